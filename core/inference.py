"""Paddle Inference on an exported static graph (inference.json/.pdmodel + inference.pdiparams)."""
import os

import numpy as np

from .errors import ModelLoadError


def model_files(model_dir, prefix="inference"):
    params = os.path.join(model_dir, prefix + ".pdiparams")
    for ext in (".json", ".pdmodel"):
        graph = os.path.join(model_dir, prefix + ext)
        if os.path.isfile(graph) and os.path.isfile(params):
            return graph, params
    raise ModelLoadError(f"{model_dir}: no exported model there (expected {prefix}.json or {prefix}.pdmodel "
                         f"and {prefix}.pdiparams; run export_model.py first)")


class PaddlePredictor:
    """Runs a static graph with named int64 inputs; returns the first output as numpy."""

    def __init__(self, model_dir, prefix="inference", device="cpu", cpu_threads=2, enable_mkldnn=False):
        from paddle import inference

        graph, params = model_files(model_dir, prefix)
        config = inference.Config(graph, params)
        if device == "gpu":
            config.enable_use_gpu(100, 0)
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if enable_mkldnn:
                config.enable_mkldnn()
        config.disable_glog_info()
        config.switch_ir_optim(True)
        self.predictor = inference.create_predictor(config)
        self.input_names = self.predictor.get_input_names()
        self.output_names = self.predictor.get_output_names()

    def run(self, **inputs):
        for name in self.input_names:
            if name not in inputs:
                raise ValueError(f"missing input '{name}' (the model takes {', '.join(self.input_names)})")
            handle = self.predictor.get_input_handle(name)
            arr = np.ascontiguousarray(inputs[name])
            handle.reshape(arr.shape)
            handle.copy_from_cpu(arr)
        self.predictor.run()
        return self.predictor.get_output_handle(self.output_names[0]).copy_to_cpu()

"""Paddle Inference on an exported static graph (inference.json/.pdmodel + inference.pdiparams)."""

import os

import numpy as np

from .errors import ModelLoadError

# the one list of engine backends; paddle-bf16 is Paddle Inference with oneDNN in bfloat16 (CPUs with AVX512_BF16/AMX)
BACKENDS = ("paddle", "paddle-bf16", "onnxruntime", "onnxruntime-int8")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX), which Paddle's oneDNN bf16 kernels need."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def default_threads(requested: int | None = None) -> int:
    """CPU threads for an engine: the value asked for, else $OMP_NUM_THREADS, else 2 (this machine's cores)."""
    return int(requested or os.environ.get("OMP_NUM_THREADS") or 2)


ONNX_FILE = "inference.onnx"
ONNX_INT8_FILE = "inference.int8.onnx"


def set_threads(n: int) -> None:
    """Set Paddle's CPU math-library threads, also when Paddle is already loaded (the environment
    variables alone are read only at start), and the variables for child processes."""
    if n and n > 0:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(n)
        import paddle

        paddle.base.core.set_num_threads(int(n))


LIMITS_FILE = "model_limits.json"


def write_limits(model: object, output_path: str) -> dict | None:
    """Record what inputs the exported graph can take (vocabulary, token types, positions), from the
    backbone config of `model`, so that servers refuse ids the graph would read out of range."""
    import json

    for layer in model.sublayers(include_self=True):
        cfg = getattr(layer, "config", None)
        if cfg is not None and getattr(cfg, "type_vocab_size", None):
            limits = {k: int(getattr(cfg, k)) for k in ("vocab_size", "type_vocab_size", "max_position_embeddings")}
            with open(os.path.join(output_path, LIMITS_FILE), "w") as f:
                json.dump(limits, f, indent=1)
            return limits
    return None


def read_limits(model_dir: str) -> dict:
    """{vocab_size, type_vocab_size, max_position_embeddings} of an export, {} for older exports."""
    import json

    p = os.path.join(model_dir, LIMITS_FILE)
    if not os.path.isfile(p):
        return {}
    with open(p) as f:
        return json.load(f)


def model_files(model_dir: str, prefix: str = "inference") -> tuple[str, str]:
    params = os.path.join(model_dir, prefix + ".pdiparams")
    for ext in (".json", ".pdmodel"):
        graph = os.path.join(model_dir, prefix + ext)
        if os.path.isfile(graph) and os.path.isfile(params):
            return graph, params
    raise ModelLoadError(
        f"{model_dir}: no exported model there (expected {prefix}.json or {prefix}.pdmodel "
        f"and {prefix}.pdiparams; run export_model.py first)"
    )


def name_output(model_dir: str, name: str, prefix: str = "inference") -> bool:
    """Give the first output of an exported PIR graph a name (paddle.jit.save calls it fetch_name_0).

    Paddle Inference and paddle2onnx then report `name`, as PaddleNLP's exported models do."""
    import json

    path = os.path.join(model_dir, prefix + ".json")
    with open(path, encoding="utf-8") as f:
        graph = json.load(f)
    renamed = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("#") == "1.fetch":
                for a in node.get("A", []):
                    if a.get("N") == "name" and a["AT"].get("D") == "fetch_name_0":
                        a["AT"]["D"] = name
                        renamed.append(name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(graph)
    if renamed:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(graph, f, separators=(",", ":"))
        os.replace(tmp, path)
    return bool(renamed)


class PaddlePredictor:
    """Runs a static graph with named int64 inputs; returns the first output as numpy.

    GPU/TensorRT options follow PaddleNLP's deploy/python/predict.py (untestable on CPU machines).
    """

    def __init__(
        self,
        model_dir,
        prefix="inference",
        device="cpu",
        cpu_threads=2,
        enable_mkldnn=False,
        use_tensorrt=False,
        precision="fp32",
    ):
        from paddle import inference

        if device != "gpu" and precision == "bf16" and not cpu_has_bf16():
            raise ModelLoadError(
                "backend paddle-bf16: this CPU has no native bfloat16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo); "
                "use paddle, onnxruntime or onnxruntime-int8"
            )

        graph, params = model_files(model_dir, prefix)
        config = inference.Config(graph, params)
        if device == "gpu":
            config.enable_use_gpu(100, 0)
            if use_tensorrt:
                mode = {
                    "fp32": inference.PrecisionType.Float32,
                    "fp16": inference.PrecisionType.Half,
                    "int8": inference.PrecisionType.Int8,
                }[precision]
                config.enable_tensorrt_engine(
                    workspace_size=1 << 30,
                    max_batch_size=64,
                    min_subgraph_size=5,
                    precision_mode=mode,
                    use_static=False,
                    use_calib_mode=False,
                )
        else:
            config.disable_gpu()
            config.set_cpu_math_library_num_threads(cpu_threads)
            if enable_mkldnn or precision == "bf16":
                config.enable_mkldnn()
            if precision == "bf16":  # oneDNN bf16 kernels for matmul/fc/layer_norm/softmax..., fp32 elsewhere
                config.enable_mkldnn_bfloat16()
        config.disable_glog_info()
        config.switch_ir_optim(True)
        self.predictor = inference.create_predictor(config)
        self.input_names = list(self.predictor.get_input_names())
        self.output_names = list(self.predictor.get_output_names())

    def run(self, feeds: dict | None = None, **inputs: np.ndarray) -> np.ndarray:
        feeds = dict(feeds or {}, **inputs)
        for name in self.input_names:
            if name not in feeds:
                raise ValueError(f"missing input '{name}' (the model takes {', '.join(self.input_names)})")
            handle = self.predictor.get_input_handle(name)
            arr = np.ascontiguousarray(feeds[name])
            handle.reshape(arr.shape)
            handle.copy_from_cpu(arr)
        self.predictor.run()
        return self.predictor.get_output_handle(self.output_names[0]).copy_to_cpu()


def constants_to_initializers(model: object) -> int:
    """Move every tensor `Constant` node of an ONNX graph into the graph's initializers (in place).

    paddle2onnx writes each weight as a Constant node; ONNX Runtime's quantizer only quantizes
    weights that are initializers (with Constants it silently quantizes nothing), and its graph
    optimizer folds initializers better. Returns how many were moved."""
    from onnx import numpy_helper

    g = model.graph
    keep, moved = [], 0
    for node in g.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            g.initializer.append(numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t), node.output[0]))
            moved += 1
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)
    return moved


INT8_OPS = ("MatMul", "Gather")


def quantize_onnx_int8(src: str, dst: str) -> str:
    """Dynamic int8 quantization (per-channel int8 weights, activations quantized at run time) of the
    MatMul weights and the embedding tables (Gather) of an ONNX model whose weights are initializers."""
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        # constant folding first (ORT's basic level): a weight reached through Identity or Mul nodes
        # (paddle2onnx zeroes an embedding's padding row with a Mul) becomes a plain initializer
        folded = os.path.join(tmp, "folded.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = folded
        so.log_severity_level = 3
        ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        quantize_dynamic(
            folded, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(INT8_OPS), per_channel=True
        )
    return dst


def to_onnx(model_dir: str, opset: int = 13, quantize_int8: bool = False) -> list[str]:
    """Convert model_dir/inference.* to ONNX (weights as initializers) and optionally an int8 copy.
    Returns the paths."""
    import onnx
    import paddle2onnx

    graph, params = model_files(model_dir)
    out = os.path.join(model_dir, ONNX_FILE)
    # optimize_tool: paddle2onnx's default (polygraphy) pip-installs packages at run time; onnxoptimizer is pinned
    paddle2onnx.export(
        graph, params, save_file=out, opset_version=opset, enable_onnx_checker=True, optimize_tool="onnxoptimizer"
    )
    model = onnx.load(out)
    constants_to_initializers(model)
    onnx.save(model, out)
    paths = [out]
    if quantize_int8:
        paths.append(quantize_onnx_int8(out, os.path.join(model_dir, ONNX_INT8_FILE)))
    return paths

"""Export: dynamic graph -> static graph (the one path of every model kind), and the export_model.py entry point."""

import argparse
import json
import os
from collections.abc import Callable

from .checkpoint import RANKER

INPUT_NAMES = ("input_ids", "token_type_ids")


def export_static(model: object, output_path: str, prefix: str = "inference", output_name: str | None = None) -> str:
    """Save `model.predict(input_ids, token_type_ids)` as a static graph output_path/prefix.* (the one export
    path of every model kind), with the limits of its inputs; `output_name` names the graph's output."""
    import paddle

    class Scorer(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids):  # first parameter must be `self` for jit.save
            return self.inner.predict(input_ids, token_type_ids)

    scorer = Scorer(model)
    scorer.eval()
    spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=n) for n in INPUT_NAMES]
    static = paddle.jit.to_static(scorer, input_spec=spec, full_graph=True)
    os.makedirs(output_path, exist_ok=True)
    prefix_path = os.path.join(output_path, prefix)
    paddle.jit.save(static, prefix_path)
    from .inference import name_output, write_limits

    if output_name:
        name_output(output_path, output_name, prefix)
    write_limits(model, output_path)
    return prefix_path


def export_main(build: Callable, description: str, argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params_path", required=True, help="checkpoint dir or its model_state.pdparams")
    p.add_argument("--output_path", default="./output", help="where inference.json/.pdiparams are written")
    p.add_argument(
        "--model_name_or_path",
        default="multilingual-e5-small",
        help="backbone, used only when the checkpoint has no config/tokenizer of its own",
    )
    p.add_argument("--onnx", action="store_true", help="also write inference.onnx (paddle2onnx) for ONNX Runtime")
    p.add_argument("--int8", action="store_true", help="with --onnx: also a dynamically quantized int8 copy")
    args = p.parse_args(argv)
    model, tokenizer, _, meta = build(args.model_name_or_path, params_path=args.params_path)
    prefix = export_static(model, args.output_path)
    tokenizer.save_pretrained(args.output_path)  # the serving side tokenizes with exactly this
    meta = dict(meta, inputs=["input_ids", "token_type_ids"], output="probability, shape [batch]")
    with open(os.path.join(args.output_path, RANKER), "w") as f:
        json.dump(meta, f, indent=1)
    if args.onnx or args.int8:
        from core.inference import to_onnx

        to_onnx(args.output_path, quantize_int8=args.int8)
    files = sorted(f for f in os.listdir(args.output_path) if f.startswith("inference"))
    print(f"exported {prefix}: {', '.join(files)}")
    return args.output_path

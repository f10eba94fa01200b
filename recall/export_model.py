"""Export the recall encoder (query/passage -> normalised embedding) to a static graph.

    python recall/export_model.py --output_path output/recall_encoder              # zero-shot e5
    python recall/export_model.py --params_path checkpoints/recall/model_best --output_path ...
Feeds input_ids, token_type_ids; output: the L2-normalised embedding ("output_embedding").
"""

import argparse

from core.cli import run_cli
from recall.model import build, export


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params_path", default=None, help="a recall checkpoint (default: the pretrained backbone)")
    p.add_argument("--output_path", default="./output/recall_encoder")
    p.add_argument("--model_name_or_path", default="multilingual-e5-small")
    p.add_argument("--output_emb_size", type=int, default=0, help="projection size (0: none)")
    p.add_argument("--onnx", action="store_true", help="also write inference.onnx")
    p.add_argument("--int8", action="store_true", help="also write inference.int8.onnx (dynamic int8, implies --onnx)")
    args = p.parse_args(argv)
    model, tokenizer, _, meta = build(
        args.model_name_or_path, params_path=args.params_path, output_emb_size=args.output_emb_size
    )
    out = export(model, tokenizer, meta, args.output_path)
    if args.onnx or args.int8:
        from core.inference import to_onnx

        to_onnx(out, quantize_int8=args.int8)
    print(f"exported the recall encoder to {out}")


if __name__ == "__main__":
    run_cli(main)

r"""Average the weights of checkpoints of one model: WiSE-FT between a fine-tuned model and the one it
started from, or checkpoints of one run (any trainer's checkpoints: cross-encoder, pairwise, recall).

    python cross_encoder/interpolate.py --checkpoints work_dirs/rocketqa/ce_binary/model_600 \
        work_dirs/rocketqa/ranker/model_600 --weights 0.3 0.7 --output_path work_dirs/rocketqa/ranker_wise
The output is a weights-only checkpoint (tokenizer, config and ranker.json from the first one), to
export like any other (cross_encoder/export_model.py --params_path ...).
"""

import argparse

from core.checkpoint import interpolate
from core.cli import run_cli


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoints", nargs="+", required=True, help="two or more checkpoint dirs of one model")
    p.add_argument("--weights", nargs="+", type=float, required=True, help="one weight each, summing to 1")
    p.add_argument("--output_path", required=True, help="the checkpoint dir to write")
    args = p.parse_args(argv)
    out = interpolate(args.checkpoints, args.weights, args.output_path)
    mix = " + ".join(f"{w:g} x {c}" for w, c in zip(args.weights, args.checkpoints))
    print(f"wrote {out}: {mix}")
    return out


if __name__ == "__main__":
    run_cli(main)

"""Rank (query, title) pairs with a cross-encoder; prints the top-k sorted {'text_a', 'text_b', 'pred_prob'}.

    python cross_encoder/predict.py --params_path checkpoints/cross_encoder/model_best \
        --input_file data/sort/test_pairwise.csv --topk 10
"""

import argparse

from core.cli import run_cli
from core.prediction import add_predict_args, predict_file
from cross_encoder.common import build


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_predict_args(p)
    p.add_argument("--topk", type=int, default=10, help="how many of the best-scored pairs to keep")
    args = p.parse_args(argv)
    model, tokenizer, _, _ = build(args.model_name_or_path, params_path=args.params_path)
    return predict_file(model, tokenizer, args, keys=("text_a", "text_b"), sort=True, topk=args.topk)


if __name__ == "__main__":
    run_cli(main)

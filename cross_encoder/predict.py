"""Rank (query, title) pairs with a cross-encoder; prints the top-k sorted {'text_a', 'text_b', 'pred_prob'}.

    python cross_encoder/predict.py --params_path checkpoints/cross_encoder/model_best \
        --input_file data/sort/test_pairwise.csv --topk 10
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.evaluation import add_predict_args, predict_file  # noqa: E402
from core.ranker import run_cli  # noqa: E402
from cross_encoder.common import build  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_predict_args(p)
    p.add_argument("--topk", type=int, default=10, help="how many of the best-scored pairs to keep")
    args = p.parse_args(argv)
    model, tokenizer, _, _ = build(args.model_name_or_path, params_path=args.params_path)
    return predict_file(model, tokenizer, args, keys=("text_a", "text_b"), sort=True, topk=args.topk)


if __name__ == "__main__":
    run_cli(main)

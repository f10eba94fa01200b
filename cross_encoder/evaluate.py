"""AUC, NDCG@k and MRR of a cross-encoder checkpoint on a dev file.

    python cross_encoder/evaluate.py --init_from_ckpt checkpoints/cross_encoder/model_best \
        --test_file data/rank/dev_pairwise.csv
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.evaluation import add_eval_args, evaluate_file  # noqa: E402
from core.ranker import run_cli  # noqa: E402
from cross_encoder.common import build  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_args(p)
    args = p.parse_args(argv)
    model, tokenizer, _, _ = build(args.model_name_or_path, params_path=args.init_from_ckpt)
    return evaluate_file(model, tokenizer, args)


if __name__ == "__main__":
    run_cli(main)

"""Score (query, title) pairs with a pairwise checkpoint; prints {'query', 'title', 'pred_prob'}.

    python ernie_matching/predict_pairwise.py --params_path checkpoints/pairwise/model_best \
        --input_file data/sort/test_pairwise.csv --output_file output/pairwise_pred.tsv
"""

import argparse

from core.cli import run_cli
from core.prediction import add_predict_args, predict_file
from ernie_matching.common import build


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_predict_args(p)
    args = p.parse_args(argv)
    model, tokenizer, _, _ = build(args.model_name_or_path, params_path=args.params_path)
    return predict_file(model, tokenizer, args)


if __name__ == "__main__":
    run_cli(main)

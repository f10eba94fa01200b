"""AUC, per-query NDCG@k and MRR of a pairwise checkpoint (or exported model) on a dev file.

    python ernie_matching/evaluate.py --init_from_ckpt checkpoints/pairwise/model_best \
        --test_file data/sort/dev_pairwise.csv
    python ... --model_dir output/EXPORTED --backend paddle|onnxruntime   (static graph, faster)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.evaluation import evaluate_main  # noqa: E402
from core.ranker import run_cli  # noqa: E402
from ernie_matching.common import build  # noqa: E402


def main(argv=None):
    return evaluate_main(build, __doc__, argv)


if __name__ == "__main__":
    run_cli(main)

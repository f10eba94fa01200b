"""AUC, per-query NDCG@k and MRR of a pairwise checkpoint (or exported model) on a dev file.

    python ernie_matching/evaluate.py --init_from_ckpt checkpoints/pairwise/model_best \
        --test_file data/sort/dev_pairwise.csv
    python ... --model_dir output/EXPORTED --backend paddle|onnxruntime   (static graph, faster)
"""

from core.cli import run_cli
from core.evaluation import evaluate_main
from ernie_matching.common import build


def main(argv=None):
    return evaluate_main(build, __doc__, argv)


if __name__ == "__main__":
    run_cli(main)

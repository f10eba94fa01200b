"""Export a pairwise checkpoint to a static graph (feeds input_ids, token_type_ids; output: probability).

    python ernie_matching/export_model.py --params_path checkpoints/pairwise/model_best \
        --output_path ./output/pairwise
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.exporting import export_main  # noqa: E402
from core.ranker import run_cli  # noqa: E402
from ernie_matching.common import build  # noqa: E402

if __name__ == "__main__":
    run_cli(lambda: export_main(build, __doc__))

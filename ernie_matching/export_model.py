"""Export a pairwise checkpoint to a static graph (feeds input_ids, token_type_ids; output: probability).

    python ernie_matching/export_model.py --params_path checkpoints/pairwise/model_best \
        --output_path ./output/pairwise
"""

from core.cli import run_cli
from core.exporting import export_main
from ernie_matching.common import build

if __name__ == "__main__":
    run_cli(lambda: export_main(build, __doc__))

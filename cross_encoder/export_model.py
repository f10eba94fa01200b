"""Export a cross-encoder checkpoint to a static graph.

Feeds input_ids, token_type_ids; the output is the relevance probability per row (softmax over
the two classes inside the graph), shape [batch].
    python cross_encoder/export_model.py --params_path checkpoints/cross_encoder/model_best \
        --output_path ./output/cross_encoder
"""

from core.cli import run_cli
from core.exporting import export_main
from cross_encoder.common import build

if __name__ == "__main__":
    run_cli(lambda: export_main(build, __doc__))

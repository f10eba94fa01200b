"""Train the recall encoder with SimCSE: a text and itself, two dropout masks, in-batch negatives.

    python recall/train_simcse.py --train_set_file data/recall/simcse_train.csv --save_dir checkpoints/simcse \
        --batch_size 64 --learning_rate 5e-5 --epochs 1 --dropout 0.1 --scale 20 --dup_rate 0.3
The train file holds one text per line (unsupervised; both views get the passage prefix) or
query\\ttitle pairs (supervised). Multi-GPU: python -u -m paddle.distributed.launch --gpus "0,1" ...
"""

from core.cli import run_cli
from recall.training import parser, run


def main(argv=None):
    p = parser(__doc__, margin=0.0, scale=20.0)
    p.set_defaults(dropout=0.1)
    p.add_argument(
        "--dup_rate", type=float, default=0.0, help="word repetition rate of the second view (ESimCSE; 0: plain SimCSE)"
    )
    args = p.parse_args(argv)
    if not 0.0 <= args.dup_rate < 1.0:
        p.error("--dup_rate must be in [0, 1)")
    return run(args, simcse=True)


if __name__ == "__main__":
    run_cli(main)

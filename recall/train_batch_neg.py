"""Train the recall dual encoder with in-batch negatives (PaddleNLP's train_batch_neg.py flags).

    python recall/train_batch_neg.py --train_set_file data/recall/train.csv --save_dir checkpoints/batch_neg \
        --batch_size 64 --learning_rate 5e-5 --epochs 3 --margin 0.2 --scale 30 --output_emb_size 0
Multi-GPU: python -u -m paddle.distributed.launch --gpus "0,1,2,3" recall/train_batch_neg.py ...
--evaluate --similar_text_pair_file data/recall/dev.csv --corpus_file data/recall/corpus.csv reports
recall@K every --eval_step steps and keeps the best checkpoint as model_best.
RocketQA-style hard negatives: --hard_negatives_file data/recall/hard_negatives.tsv (recall/mine_negatives.py).
"""

from core.cli import run_cli
from recall.training import parser, run


def main(argv=None):
    p = parser(__doc__, margin=0.2, scale=30.0)
    p.add_argument(
        "--hard_negatives_file",
        default=None,
        help="query\\ttitle\\tneg_title rows (recall/mine_negatives.py): each training row gets one of its query's "
        "mined negatives, scored against every query of the batch beside the in-batch titles",
    )
    p.add_argument(
        "--teacher_scores_file",
        default=None,
        help="query\\ttitle\\tscore rows from a cross-encoder (mine_negatives.py's OUTPUT.scores.tsv): margin-MSE "
        "distillation of its (title - negative) logit margin into the dual encoder's scaled cosine margin",
    )
    p.add_argument("--distill_weight", type=float, default=1.0, help="weight of the margin-MSE term")
    args = p.parse_args(argv)
    args.dropout = None
    args.dup_rate = 0.0
    return run(args, simcse=False)


if __name__ == "__main__":
    run_cli(main)

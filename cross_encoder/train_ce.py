"""Train the cross-encoder (2-class classifier) on (query, title, label) rows.

    python cross_encoder/train_ce.py --train_set data/rank/train.csv \
        --test_file data/rank/dev_pairwise.csv --save_dir checkpoints/cross_encoder
Multi-GPU: python -u -m paddle.distributed.launch --gpus "0,1,2,3" cross_encoder/train_ce.py ...

Trained on what recall returns (RocketQA) and on the graded labels 0..3:
    python cross_encoder/train_ce.py --train_set data/rank/train_graded.csv --max_grade 3 \
        --hard_negatives_file data/recall/hard_negatives.tsv ...
--max_grade G: the labels are grades 0..G and the target probability of a pair is grade / G (soft-label
cross-entropy), so "somewhat relevant" (1) and "fully relevant" (3) are not the same class.
--graded_target gain: the target is NDCG's gain instead, (2^grade - 1) / (2^G - 1) (0, 1/7, 3/7, 1 for
G = 3): a pointwise model then estimates each title's expected gain, the order that maximizes expected DCG.
--hard_negatives_file: recall/mine_negatives.py's PaddleNLP rows (query, title, neg_title): each mined
(query, neg_title) becomes a row of label 0, unless the training file already labels that pair.
--listwise N: train on groups of N titles of one query, a title of grade >= 1 first and N - 1 of lower
grade (mined ones included); besides the pointwise loss on every pair, a softmax cross-entropy over the
group's relevance logits puts the first title on top (localized contrastive estimation, as rerankers
trained on retriever negatives are). --batch_size then counts groups (N pairs each).

A smaller, faster ranker distilled from a trained one (the student starts as the teacher's lower layers):
    python cross_encoder/train_ce.py --teacher checkpoints/cross_encoder/model_600 --num_layers 6 \
        --train_set data/sort/train.csv --test_file data/sort/dev_pairwise.csv --save_dir checkpoints/ce_6l
"""

import math

from core.args import training_parser
from core.backbone import keep_lower_layers
from core.cli import run_cli
from core.data import EncodedDataset, PairEncoder, collate_pairs, ranking_groups, read_labeled_pairs
from core.errors import DataError
from core.evaluation import auc_evaluator
from core.trainer import init_device, set_seed, train
from cross_encoder.common import build


def parse_args(argv=None):
    p = training_parser(__doc__)
    p.add_argument(
        "--train_set",
        "--train_file",
        dest="train_set",
        required=True,
        help="query\\ttitle\\tlabel (label 0/1, header optional)",
    )
    p.add_argument("--test_file", required=True, help="query\\ttitle\\tlabel dev file for AUC")
    p.add_argument(
        "--max_grade",
        type=int,
        default=1,
        help="labels are grades 0..N; the target probability is grade / N (1: PaddleNLP's 0/1 labels)",
    )
    p.add_argument(
        "--graded_target",
        choices=("grade", "gain"),
        default="grade",
        help="with --max_grade > 1: target grade / N, or NDCG's gain (2^grade - 1) / (2^N - 1)",
    )
    p.add_argument(
        "--hard_negatives_file",
        default=None,
        help="mined negatives (recall/mine_negatives.py: query\\ttitle\\tneg_title): each neg_title joins as label 0",
    )
    p.add_argument(
        "--soft_labels_file",
        default=None,
        help="query\\ttitle\\tscore rows (score in [0, 1], e.g. a teacher's scores of unlabelled queries: "
        "recall/mine_negatives.py --scores_output): each pair not in --train_set joins with the score as its "
        "target probability (needs --max_grade > 1 and grade targets)",
    )
    p.add_argument(
        "--listwise",
        type=int,
        default=0,
        help="groups of N titles of one query, the best first: adds a softmax loss over each group (0: off)",
    )
    p.add_argument(
        "--save_steps", "--save_step", dest="save_step", type=int, default=10000, help="save a checkpoint every N steps"
    )
    p.add_argument("--use_amp", action="store_true", help="mixed precision (GPU only; ignored on cpu)")
    p.add_argument("--scale_loss", type=float, default=2**15, help="initial loss scaling for --use_amp")
    p.add_argument(
        "--teacher",
        default=None,
        help="a trained cross-encoder checkpoint to distil from: its logit margin is the student's target",
    )
    p.add_argument(
        "--num_layers",
        type=int,
        default=None,
        help="keep only the lower N encoder layers (with --teacher: of the teacher's own weights)",
    )
    p.add_argument(
        "--distill_alpha",
        type=float,
        default=0.5,
        help="with --teacher: loss = alpha * MSE(student margin, teacher margin) + (1 - alpha) * cross-entropy",
    )
    args = p.parse_args(argv)
    if not 0.0 <= args.distill_alpha <= 1.0:
        p.error(f"--distill_alpha {args.distill_alpha}: must be within [0, 1]")
    if args.listwise == 1 or args.listwise < 0:
        p.error(f"--listwise {args.listwise}: a group needs at least 2 titles (0 turns it off)")
    if args.max_grade < 1:
        p.error(f"--max_grade {args.max_grade}: must be at least 1")
    if args.soft_labels_file and (args.max_grade == 1 or args.graded_target != "grade" or args.listwise):
        p.error(
            "--soft_labels_file: its scores are target probabilities, so it needs --max_grade > 1 with "
            "--graded_target grade, and no --listwise"
        )
    return args


def add_hard_negatives(rows: list[dict], path: str) -> int:
    """Append each mined (query, neg_title) of `path` as a label-0 row unless `rows` already has the pair;
    returns how many were added."""
    from core.data import read_tsv

    seen = {(r["query"], r["title"]) for r in rows}
    added = 0
    for r in read_tsv(path, ("query", "title", "neg_title")):
        key = (r["query"], r["neg_title"])
        if key not in seen:
            seen.add(key)
            rows.append({"query": key[0], "title": key[1], "label": 0})
            added += 1
    return added


def add_soft_labels(rows: list[dict], path: str, max_grade: int) -> int:
    """Append each (query, title, score) of `path` whose pair `rows` does not have, with label
    score * max_grade (so that label / max_grade, the training target, is the score); returns how many."""
    from core.data import read_tsv

    def in_range(row):
        return None if 0.0 <= row["score"] <= 1.0 else f"column 'score' is {row['score']}, must be within [0, 1]"

    seen = {(r["query"], r["title"]) for r in rows}
    added = 0
    for r in read_tsv(path, ("query", "title", "score"), float_columns=("score",), check_row=in_range):
        key = (r["query"], r["title"])
        if key not in seen:
            seen.add(key)
            rows.append({"query": key[0], "title": key[1], "label": r["score"] * max_grade})
            added += 1
    return added


def main(argv=None):
    import paddle
    import paddle.nn.functional as F

    args = parse_args(argv)
    rank, world = init_device(args.device)
    set_seed(args.seed)
    train_rows = read_labeled_pairs(args.train_set, label_values=range(args.max_grade + 1))
    if args.hard_negatives_file:
        added = add_hard_negatives(train_rows, args.hard_negatives_file)
        if rank == 0:
            print(f"{added} mined negatives from {args.hard_negatives_file} join the training rows as label 0")
    if args.soft_labels_file:
        added = add_soft_labels(train_rows, args.soft_labels_file, args.max_grade)
        if rank == 0:
            print(f"{added} pairs from {args.soft_labels_file} join the training rows with their scores as targets")
    dev_rows = read_labeled_pairs(args.test_file)
    teacher = None
    if args.teacher:  # the student starts from the teacher's weights; the teacher only scores
        model, tokenizer, config, meta = build(args.model_name_or_path, params_path=args.teacher, dropout=args.dropout)
        teacher = build(args.model_name_or_path, params_path=args.teacher)[0]
        teacher.eval()
        meta["distilled_from"] = {"teacher": args.teacher, "alpha": args.distill_alpha}
    else:
        model, tokenizer, config, meta = build(args.model_name_or_path, dropout=args.dropout, pooling=args.pooling)
    meta["objective"] = {"max_grade": args.max_grade, "hard_negatives_file": args.hard_negatives_file}
    if args.soft_labels_file:
        meta["objective"]["soft_labels_file"] = args.soft_labels_file
    if args.max_grade > 1 and args.graded_target == "gain":
        meta["objective"]["graded_target"] = "gain"
    if args.listwise:
        meta["objective"]["listwise"] = args.listwise
    if args.num_layers:
        keep_lower_layers(model.model, args.num_layers)
    if rank == 0:
        print(f"{len(train_rows)} training pairs, {len(dev_rows)} dev pairs, backbone {args.model_name_or_path}")
    enc = PairEncoder(tokenizer, args.max_seq_length)
    pad_id, pad_type = tokenizer.pad_token_id or 0, getattr(tokenizer, "pad_token_type_id", 0) or 0
    if args.listwise:
        groups = ranking_groups(train_rows, args.listwise, seed=args.seed)
        if not groups:
            raise DataError(f"{args.train_set}: no query has titles of two grades, so --listwise has no group")
        if rank == 0:
            print(f"{len(groups)} groups of {args.listwise} titles (--listwise; --batch_size counts groups)")
        dataset = EncodedDataset(groups, lambda g: [(*enc(g["query"], t), grade) for t, grade in g["titles"]])

        def collate(items):  # groups -> their pairs, one group after another
            return collate_pairs([pair for group in items for pair in group], pad_id, pad_type)
    else:
        dataset = EncodedDataset(train_rows, lambda r: (*enc(r["query"], r["title"]), r["label"]))

        def collate(items):
            return collate_pairs(items, pad_id, pad_type)

    def loss_fn(net, t):
        logits = net(t[0], t[1])
        if args.max_grade == 1:
            ce = F.cross_entropy(logits, t[2].astype("int64").unsqueeze(-1))
        else:  # soft labels: the target probability of "relevant" is grade / max_grade, or the gain
            y = t[2].astype("float32")
            if args.graded_target == "gain":
                y = (paddle.exp(y * math.log(2.0)) - 1.0) / (2.0**args.max_grade - 1.0)
            else:
                y = y / args.max_grade
            ce = F.cross_entropy(logits, paddle.stack([1.0 - y, y], axis=-1), soft_label=True)
        if args.listwise:  # each group's first title above the group's lower-graded rest
            relevance = (logits[:, 1] - logits[:, 0]).reshape([-1, args.listwise])
            first = paddle.zeros([relevance.shape[0], 1], dtype="int64")
            ce = ce + F.cross_entropy(relevance, first)
        if teacher is None:
            return ce
        with paddle.no_grad():
            target = teacher(t[0], t[1])
        mse = F.mse_loss(logits[:, 1] - logits[:, 0], target[:, 1] - target[:, 0])
        return args.distill_alpha * mse + (1.0 - args.distill_alpha) * ce

    evaluate = auc_evaluator(tokenizer, dev_rows, args.max_seq_length, args.batch_size)

    meta["max_seq_length"] = args.max_seq_length
    amp = args.use_amp and args.device == "gpu"
    if args.use_amp and not amp and rank == 0:
        print("[warning] --use_amp needs --device gpu: training in fp32")
    return train(
        model,
        dataset,
        collate,
        loss_fn,
        args,
        tokenizer=tokenizer,
        backbone_config=config,
        meta=meta,
        evaluate=evaluate,
        metric_name="auc",
        rank=rank,
        world_size=world,
        amp_scale=args.scale_loss if amp else None,
    )


if __name__ == "__main__":
    run_cli(main)

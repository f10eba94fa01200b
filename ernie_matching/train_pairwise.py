"""Train the pairwise matching model on (query, title, neg_title) triples.

    python ernie_matching/train_pairwise.py --train_file data/sort/train_pairwise.csv \
        --test_file data/sort/dev_pairwise.csv --save_dir checkpoints/pairwise
Multi-GPU: python -u -m paddle.distributed.launch --gpus "0,1,2,3" ernie_matching/train_pairwise.py ...

--hard_negatives_file: recall/mine_negatives.py's rows (query, title, neg_title) join the training triples
(RocketQA: negatives the retriever returns). With a graded training file, a mined row's title keeps the
grade the training file gives that (query, title) (RELEVANT_GRADE when it gives none) and its neg_title
gets grade 0, so mined rows take part in the in-batch graded pairs too.

--init_weights takes a pairwise checkpoint, or a cross-encoder's (cross_encoder/train_ce.py): its backbone and
its 2-class head as one logit, so the run starts from that cross-encoder's scores (and its pooling, unless
--pooling names it).
"""

import numpy as np

from core import checkpoint
from core.args import training_parser
from core.cli import run_cli
from core.data import EncodedDataset, PairEncoder, collate_pairs, read_labeled_pairs, read_pairwise_train
from core.errors import DataError
from core.evaluation import auc_evaluator
from core.trainer import init_device, set_seed, train
from ernie_matching.common import build, init_from_cross_encoder


def parse_args(argv=None):
    p = training_parser(__doc__)
    p.add_argument(
        "--train_file",
        required=True,
        help="query\\ttitle\\tneg_title[\\tlabel\\tneg_label] (header optional; graded labels optional)",
    )
    p.add_argument("--test_file", required=True, help="query\\ttitle\\tlabel dev file for AUC")
    p.add_argument(
        "--hard_negatives_file",
        default=None,
        help="mined triples (recall/mine_negatives.py: query\\ttitle\\tneg_title) added to the training triples",
    )
    p.add_argument("--margin", type=float, default=0.2, help="margin between pos_score and neg_score")
    p.add_argument("--save_step", type=int, default=10000, help="save a checkpoint every N steps")
    p.add_argument(
        "--in_batch_pairs",
        default="auto",
        choices=["auto", "on", "off"],
        help="also rank rows of different queries by their graded labels (needs the label columns; "
        "auto: on when the train file has them)",
    )
    return p.parse_args(argv)


RELEVANT_GRADE = 2  # KUAKE-QTR: grades >= 2 are relevant (datasets/prepare_kuake_qtr.py)


def add_hard_negatives(rows: list[dict], path: str) -> int:
    """Append the mined triples of `path` to `rows` (graded when `rows` are); returns how many."""
    from core.data import read_tsv

    graded = bool(rows) and "label" in rows[0]
    grade = {}
    for r in rows if graded else ():
        grade[(r["query"], r["title"])] = r["label"]
        grade[(r["query"], r["neg_title"])] = r["neg_label"]
    mined = read_tsv(path, ("query", "title", "neg_title"))
    for r in mined:
        if graded:
            r["label"], r["neg_label"] = max(1, grade.get((r["query"], r["title"]), RELEVANT_GRADE)), 0
        rows.append(r)
    return len(mined)


def main(argv=None):
    args = parse_args(argv)
    rank, world = init_device(args.device)
    set_seed(args.seed)
    train_rows = read_pairwise_train(args.train_file)
    if args.hard_negatives_file:
        added = add_hard_negatives(train_rows, args.hard_negatives_file)
        if rank == 0:
            print(f"{added} mined triples from {args.hard_negatives_file} join the training triples")
    dev_rows = read_labeled_pairs(args.test_file)
    graded = "label" in train_rows[0]
    if args.in_batch_pairs == "on" and not graded:
        raise DataError(f"{args.train_file}: --in_batch_pairs on needs the label and neg_label columns")
    in_batch = graded and args.in_batch_pairs != "off"
    start = checkpoint.read_meta(args.init_weights) if args.init_weights and not args.init_from_ckpt else {}
    from_ce = start.get("kind") == "cross_encoder"
    pooling = args.pooling
    if from_ce and pooling == "auto":
        pooling = start.get("pooling", "auto")
    elif from_ce and start.get("pooling") not in (None, pooling):
        raise DataError(
            f"--init_weights {args.init_weights}: that cross-encoder pools with {start['pooling']}, "
            f"not --pooling {pooling}: give --pooling {start['pooling']} (or auto)"
        )
    model, tokenizer, config, meta = build(
        args.model_name_or_path, margin=args.margin, dropout=args.dropout, pooling=pooling
    )
    if from_ce:
        meta["init_from_cross_encoder"] = args.init_weights
        if rank == 0:
            print(f"--init_weights {args.init_weights} is a cross-encoder's: its head starts as one logit")
    if args.init_from_ckpt is None and rank == 0:
        print(
            f"{len(train_rows)} training triples, {len(dev_rows)} dev pairs, backbone {args.model_name_or_path}"
            + (", in-batch graded pairs" if in_batch else "")
        )
    enc = PairEncoder(tokenizer, args.max_seq_length)
    labels = (lambda r: (r["label"], r["neg_label"])) if in_batch else (lambda r: ())
    dataset = EncodedDataset(
        train_rows, lambda r: (*enc(r["query"], r["title"]), *enc(r["query"], r["neg_title"]), *labels(r))
    )
    pad_id, pad_type = tokenizer.pad_token_id or 0, getattr(tokenizer, "pad_token_type_id", 0) or 0

    def collate(items):
        pos = collate_pairs([it[:2] for it in items], pad_id, pad_type)
        neg = collate_pairs([it[2:4] for it in items], pad_id, pad_type)
        graded = [np.asarray([it[k] for it in items], dtype="int64") for k in range(4, len(items[0]))]
        return pos + neg + graded

    def loss_fn(net, t):
        extra = {"pos_labels": t[4], "neg_labels": t[5]} if in_batch else {}
        return net(pos_input_ids=t[0], pos_token_type_ids=t[1], neg_input_ids=t[2], neg_token_type_ids=t[3], **extra)

    evaluate = auc_evaluator(tokenizer, dev_rows, args.max_seq_length, args.batch_size)

    meta["max_seq_length"] = args.max_seq_length
    meta["objective"] = {"in_batch_pairs": in_batch, "hard_negatives_file": args.hard_negatives_file}
    result = train(
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
        load_init_weights=init_from_cross_encoder if from_ce else None,
    )
    return dict(result, in_batch_pairs=in_batch)


if __name__ == "__main__":
    run_cli(main)

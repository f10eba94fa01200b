"""Train the cross-encoder (2-class classifier) on (query, title, label) rows.

    python cross_encoder/train_ce.py --train_set data/rank/train.csv \
        --test_file data/rank/dev_pairwise.csv --save_dir checkpoints/cross_encoder
Multi-GPU: python -u -m paddle.distributed.launch --gpus "0,1,2,3" cross_encoder/train_ce.py ...

A smaller, faster ranker distilled from a trained one (the student starts as the teacher's lower layers):
    python cross_encoder/train_ce.py --teacher checkpoints/cross_encoder/model_600 --num_layers 6 \
        --train_set data/sort/train.csv --test_file data/sort/dev_pairwise.csv --save_dir checkpoints/ce_6l
"""

from core.args import training_parser
from core.backbone import keep_lower_layers
from core.cli import run_cli
from core.data import EncodedDataset, PairEncoder, collate_pairs, read_labeled_pairs
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
    return args


def main(argv=None):
    import paddle
    import paddle.nn.functional as F

    args = parse_args(argv)
    rank, world = init_device(args.device)
    set_seed(args.seed)
    train_rows = read_labeled_pairs(args.train_set)
    dev_rows = read_labeled_pairs(args.test_file)
    teacher = None
    if args.teacher:  # the student starts from the teacher's weights; the teacher only scores
        model, tokenizer, config, meta = build(args.model_name_or_path, params_path=args.teacher, dropout=args.dropout)
        teacher = build(args.model_name_or_path, params_path=args.teacher)[0]
        teacher.eval()
        meta["distilled_from"] = {"teacher": args.teacher, "alpha": args.distill_alpha}
    else:
        model, tokenizer, config, meta = build(args.model_name_or_path, dropout=args.dropout, pooling=args.pooling)
    if args.num_layers:
        keep_lower_layers(model.model, args.num_layers)
    if rank == 0:
        print(f"{len(train_rows)} training pairs, {len(dev_rows)} dev pairs, backbone {args.model_name_or_path}")
    enc = PairEncoder(tokenizer, args.max_seq_length)
    dataset = EncodedDataset(train_rows, lambda r: (*enc(r["query"], r["title"]), r["label"]))
    pad_id, pad_type = tokenizer.pad_token_id or 0, getattr(tokenizer, "pad_token_type_id", 0) or 0

    def collate(items):
        return collate_pairs(items, pad_id, pad_type)

    def loss_fn(net, t):
        logits = net(t[0], t[1])
        ce = F.cross_entropy(logits, t[2].astype("int64").unsqueeze(-1))
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

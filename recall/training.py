"""What train_batch_neg.py and train_simcse.py share: flags, data, the in-batch loss, recall@K eval."""

import argparse

import numpy as np

from core.args import training_parser
from core.data import EncodedDataset, TextEncoder, collate_pairs, pad, read_corpus, read_tsv, run_by_length
from core.errors import DataError
from core.metrics import mrr_at_k, recall_at_k
from core.trainer import init_device, set_seed, train
from recall.model import InBatchNegativeLoss, build

RECALL_KS = (1, 5, 10, 20, 50)


def parser(doc, margin, scale):
    p = training_parser(doc)
    p.add_argument("--train_set_file", required=True, help="query\\ttitle rows (SimCSE also takes one text per row)")
    p.add_argument("--output_emb_size", type=int, default=0, help="project embeddings to this size (0: none)")
    p.add_argument("--margin", type=float, default=margin, help="subtracted from the positive's cosine")
    p.add_argument("--scale", type=float, default=scale, help="cosine -> logit scale (temperature 1/scale)")
    p.add_argument(
        "--save_steps", "--save_step", dest="save_step", type=int, default=10000, help="save a checkpoint every N steps"
    )
    p.add_argument(
        "--log_steps", dest="logging_steps", type=int, default=argparse.SUPPRESS, help="alias of --logging_steps"
    )
    p.add_argument("--eval_steps", dest="eval_step", type=int, default=argparse.SUPPRESS, help="alias of --eval_step")
    p.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate recall@K on --similar_text_pair_file against --corpus_file every --eval_step",
    )
    p.add_argument("--similar_text_pair_file", default=None, help="query\\ttitle dev pairs for --evaluate")
    p.add_argument("--corpus_file", default=None, help="one title per line: the search space of --evaluate")
    p.add_argument("--recall_num", type=int, default=50, help="recall this many titles per query in --evaluate")
    return p


def read_train_pairs(path, single_ok=False):
    cols = ("query", "title")
    rows = read_tsv(path, cols, optional=1 if single_ok else 0)
    for r in rows:
        r.setdefault("title", r["query"])
    return rows


def read_relevant(path):
    """query\\ttitle pairs -> (queries, [set of relevant titles]) in first-seen order."""
    groups = {}
    for r in read_tsv(path, ("query", "title")):
        groups.setdefault(r["query"], set()).add(r["title"])
    return list(groups), list(groups.values())


def read_hard_negatives(path):
    """query\\ttitle\\tneg_title rows (recall/mine_negatives.py; PaddleNLP's pairwise format)
    -> {query: [neg titles]}."""
    negs = {}
    for r in read_tsv(path, ("query", "title", "neg_title")):
        negs.setdefault(r["query"], {})[r["neg_title"]] = None
    return {q: list(v) for q, v in negs.items()}


def attach_hard_negatives(rows, negs):
    """Give each training row one of its query's mined negatives (rows of one query take them in turn;
    never the row's own title). Returns how many rows got one."""
    seen, n = {}, 0
    for r in rows:
        cands = [t for t in negs.get(r["query"], ()) if t != r["title"]]
        if cands:
            i = seen.get(r["query"], 0)
            r["neg_title"] = cands[i % len(cands)]
            seen[r["query"]] = i + 1
            n += 1
    return n


def read_teacher_scores(path):
    """query\\ttitle\\tscore rows (a cross-encoder's probabilities; recall/mine_negatives.py writes them)."""
    rows = read_tsv(path, ("query", "title", "score"), float_columns=("score",))
    return {(r["query"], r["title"]): r["score"] for r in rows}


def attach_teacher_margins(rows, scores, path):
    """teacher_margin = logit(score(query, title)) - logit(score(query, neg_title)) on every row with a hard
    negative; a pair the file does not score is named."""

    def logit(p):
        p = min(max(p, 1e-6), 1 - 1e-6)
        return float(np.log(p / (1 - p)))

    n = 0
    for r in rows:
        if "neg_title" not in r:
            continue
        for title in (r["title"], r["neg_title"]):
            if (r["query"], title) not in scores:
                raise DataError(f"{path}: no score for ({r['query']!r}, {title!r}); mine_negatives.py writes both")
        r["teacher_margin"] = logit(scores[(r["query"], r["title"])]) - logit(scores[(r["query"], r["neg_title"])])
        n += 1
    return n


def recall_report(retrieved, relevant):
    """recall@1/5/10/20/50 and MRR@10 over every query (retrieved/relevant: texts or ids)."""
    rec = recall_at_k(retrieved, relevant, RECALL_KS)
    out = {f"recall@{k}": round(v, 5) for k, v in rec.items()}
    out["mrr@10"] = round(mrr_at_k(retrieved, relevant, 10), 5)
    return out


def embed_texts(model, encoder, texts, batch_size=64):
    """Embeddings of texts with a dynamic-graph encoder, batched by length."""
    import paddle

    def run(batch):
        ids = paddle.to_tensor(pad([e[0] for e in batch], model.pad_token_id))
        types = paddle.to_tensor(pad([e[1] for e in batch], 0))
        return model(ids, types).numpy()

    model.eval()
    with paddle.no_grad():
        return run_by_length(encoder.many(texts), batch_size, run, length=lambda e: len(e[0]))


def recall_evaluator(tokenizer, meta, args):
    """evaluate(encoder) -> recall@recall_num on the dev pairs, brute force over the corpus."""
    queries, relevant = read_relevant(args.similar_text_pair_file)
    corpus = read_corpus(args.corpus_file)
    q_enc = TextEncoder(tokenizer, args.max_seq_length, meta["query_prefix"])
    p_enc = TextEncoder(tokenizer, args.max_seq_length, meta["passage_prefix"])
    k = args.recall_num

    def evaluate(encoder):
        doc = embed_texts(encoder, p_enc, corpus)
        q = embed_texts(encoder, q_enc, queries)
        top = np.argsort(-(q @ doc.T), axis=1, kind="stable")[:, :k]
        report = recall_report([[corpus[j] for j in row] for row in top], relevant)
        print("recall eval: " + ", ".join(f"{n}={v:.4f}" for n, v in report.items()), flush=True)
        return recall_at_k([[corpus[j] for j in row] for row in top], relevant, (k,))[k]

    return evaluate


def word_repetition(ids, types, rate, rng):
    """ESimCSE augmentation: repeat a random `rate` share of the inner tokens (not [CLS]/[SEP])."""
    inner = len(ids) - 2
    if rate <= 0 or inner < 1:
        return ids, types
    n = rng.randint(0, max(1, int(rate * inner)) + 1)
    dup = set(rng.choice(np.arange(1, 1 + inner), size=min(n, inner), replace=False).tolist())
    out_ids, out_types = [], []
    for i, (a, b) in enumerate(zip(ids, types)):
        out_ids.append(a)
        out_types.append(b)
        if i in dup:
            out_ids.append(a)
            out_types.append(b)
    return out_ids, out_types


def run(args, simcse=False):
    rank, world = init_device(args.device)
    set_seed(args.seed)
    rows = read_train_pairs(args.train_set_file, single_ok=simcse)
    if args.evaluate and not (args.similar_text_pair_file and args.corpus_file):
        raise DataError("--evaluate needs --similar_text_pair_file and --corpus_file")
    dropout = getattr(args, "dropout", None)
    encoder, tokenizer, config, meta = build(
        args.model_name_or_path, pooling=args.pooling, output_emb_size=args.output_emb_size, dropout=dropout
    )
    model = InBatchNegativeLoss(
        encoder, margin=args.margin, scale=args.scale, distill_weight=getattr(args, "distill_weight", 1.0)
    )
    if rank == 0 and args.init_from_ckpt is None:
        print(
            f"{len(rows)} training rows, backbone {args.model_name_or_path}, "
            f"{'SimCSE' if simcse else 'in-batch negatives'}: margin {args.margin}, scale {args.scale}"
        )
    q_enc = TextEncoder(tokenizer, args.max_seq_length, meta["query_prefix"])
    p_enc = TextEncoder(tokenizer, args.max_seq_length, meta["passage_prefix"])
    hard_file = getattr(args, "hard_negatives_file", None)
    if hard_file:
        with_neg = attach_hard_negatives(rows, read_hard_negatives(hard_file))
        if rank == 0:
            print(f"hard negatives from {hard_file}: {with_neg} of {len(rows)} training rows have one")
    teacher_file = getattr(args, "teacher_scores_file", None)
    if teacher_file:
        if not hard_file:
            raise DataError("--teacher_scores_file needs --hard_negatives_file (it scores their pairs)")
        with_margin = attach_teacher_margins(rows, read_teacher_scores(teacher_file), teacher_file)
        if rank == 0:
            print(f"teacher scores from {teacher_file}: margin-MSE distillation on {with_margin} rows")

    def featurize(r):
        single = simcse and r["title"] == r["query"]
        q = (p_enc if single else q_enc).many([r["query"]], what="query")[0]
        t = p_enc.many([r["title"]], what="title")[0]
        if "neg_title" in r:
            return (*q, *t, *p_enc.many([r["neg_title"]], what="neg_title")[0], r.get("teacher_margin"))
        return (*q, *t)

    dataset = EncodedDataset(rows, featurize)
    pad_id = tokenizer.pad_token_id or 0
    rng = np.random.RandomState(args.seed + rank)
    dup_rate = getattr(args, "dup_rate", 0.0)

    def collate(items):
        q = collate_pairs([it[:2] for it in items], pad_id, 0)
        titles = [it[2:4] for it in items]
        if dup_rate > 0:
            titles = [word_repetition(c, d, dup_rate, rng) for c, d in titles]
        rows_with = [i for i, it in enumerate(items) if len(it) > 4]
        out = q + collate_pairs(titles, pad_id, 0)
        if rows_with:
            out += collate_pairs([items[i][4:6] for i in rows_with], pad_id, 0)
            margins = [items[i][6] for i in rows_with]
            if all(m is not None for m in margins):
                out += [np.asarray(rows_with, dtype="int64"), np.asarray(margins, dtype="float32")]
        return out

    def loss_fn(net, t):
        return net(*t)

    evaluate = recall_evaluator(tokenizer, meta, args) if args.evaluate else None
    meta = dict(
        meta,
        max_seq_length=args.max_seq_length,
        margin=args.margin,
        scale=args.scale,
        objective="simcse"
        if simcse
        else "in_batch_negatives"
        + ("+hard_negatives" if hard_file else "")
        + ("+distillation" if teacher_file else ""),
    )
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
        metric_name=f"recall@{args.recall_num}",
        rank=rank,
        world_size=world,
        save_model=encoder,
    )

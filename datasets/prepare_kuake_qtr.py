"""Turn CBLUE KUAKE-QTR (JSON) into the PaddleNLP neural_search TSV files.

    python datasets/prepare_kuake_qtr.py --src ../shared/datasets/kuake_qtr --out data

Writes (tab-separated, UTF-8; see datasets/README.md for the formats):
  sort/train_pairwise.csv  header query,title,neg_title,label,neg_label
                           (title label > neg_title label, same query; the graded labels 0..3)
  sort/dev_pairwise.csv    header query,title,label      (label 1 when KUAKE label >= 2)
  sort/test_pairwise.csv   query,title,score             (unlabeled pairs; score = char Jaccard)
  rank/train.csv           header query,title,label
  rank/train_graded.csv    header query,title,label      (the same rows with the graded labels 0..3)
  rank/dev_pairwise.csv    header query,title,label
  recall/train.csv         query,title                   (relevant pairs of train)
  recall/corpus.csv        title                         (every unique title of all three files)
  recall/dev.csv           query,title                   (relevant pairs of dev)
  recall/unlabeled.csv     query,title                   (test pairs whose query occurs neither in train
                                                          nor in dev: unlabelled queries, for self-training)
  sort/dev_graded.csv      header query,title,label      (dev with the graded labels 0..3, for NDCG)
A query-disjoint validation split of train, for quality on unseen queries (--holdout_fraction, default
0.15 of the train queries, chosen by a hash among those that do not occur in dev; the train files above
exclude them, so its queries occur neither in training nor in dev):
  sort/holdout_pairwise.csv header query,title,label     (label 1 when KUAKE label >= 2)
  sort/holdout_graded.csv   header query,title,label     (graded labels 0..3)
  recall/holdout.csv        query,title                  (relevant pairs)
The output is deterministic: the same input gives byte-identical files.
"""

import argparse
import hashlib
import json
import os
import sys
from collections import OrderedDict

from core.text import char_jaccard, clean_field

RELEVANT = 2  # KUAKE-QTR labels 0..3; >= 2 counts as relevant


def load(path, labeled=True):
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: cannot read KUAKE-QTR JSON: {e}")
    if not isinstance(records, list):
        sys.exit(f"{path}: expected a JSON list of records")
    rows, skipped = [], 0
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "query" not in r or "title" not in r:
            sys.exit(f"{path}: record {i} lacks 'query' or 'title'")
        q, t = clean_field(str(r["query"])), clean_field(str(r["title"]))
        if not q or not t:
            skipped += 1
            continue
        label = None
        if labeled:
            try:
                label = int(r["label"])
            except (KeyError, ValueError, TypeError):
                sys.exit(f"{path}: record {i} has no integer label 0..3: {r.get('label')!r}")
            if not 0 <= label <= 3:
                sys.exit(f"{path}: record {i} has label {label} outside 0..3")
        rows.append((q, t, label))
    return rows, skipped


def write(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        if header:
            f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(c) for c in row) + "\n")
    os.replace(tmp, path)
    print(f"{path}: {len(rows)} rows")


def pairwise_triples(rows):
    by_query = OrderedDict()
    for q, t, label in rows:
        by_query.setdefault(q, OrderedDict()).setdefault(t, label)
    triples = []
    for q, titles in by_query.items():
        items = list(titles.items())
        for t_hi, l_hi in items:
            for t_lo, l_lo in items:
                if l_hi > l_lo:
                    triples.append((q, t_hi, t_lo, l_hi, l_lo))
    return triples


def unique(seq):
    return list(OrderedDict.fromkeys(seq))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--src", default="../shared/datasets/kuake_qtr", help="folder with train.json, dev.json, test_unlabeled.json"
    )
    p.add_argument("--out", default="data", help="output folder")
    p.add_argument(
        "--holdout_fraction",
        type=float,
        default=0.15,
        help="share of the train queries held out (chosen among those not in dev) as a query-disjoint split; 0: none",
    )
    args = p.parse_args()
    if not 0 <= args.holdout_fraction < 1:
        sys.exit(f"--holdout_fraction must be in [0, 1), got {args.holdout_fraction}")

    train, s1 = load(os.path.join(args.src, "train.json"))
    dev, s2 = load(os.path.join(args.src, "dev.json"))
    test, s3 = load(os.path.join(args.src, "test_unlabeled.json"), labeled=False)
    if s1 + s2 + s3:
        print(f"skipped {s1 + s2 + s3} records with an empty query or title")

    def binary(rows):
        return [(q, t, int(label >= RELEVANT)) for q, t, label in rows]

    dev_queries = {q for q, _, _ in dev}

    def rank(q):  # a deterministic pseudo-random order of the queries
        return hashlib.md5(q.encode("utf-8")).hexdigest()

    train_queries = unique(q for q, _, _ in train)
    eligible = sorted((q for q in train_queries if q not in dev_queries), key=rank)
    held = set(eligible[: round(args.holdout_fraction * len(train_queries))])

    def held_out(q):
        return q in held

    all_train = train
    holdout = [r for r in train if held_out(r[0])]
    train = [r for r in train if not held_out(r[0])]
    print(
        f"query-disjoint holdout: {len({q for q, _, _ in holdout})} queries, {len(holdout)} pairs "
        f"(train keeps {len({q for q, _, _ in train})} queries)"
    )

    out = args.out
    write(
        os.path.join(out, "sort/train_pairwise.csv"),
        ("query", "title", "neg_title", "label", "neg_label"),
        pairwise_triples(train),
    )
    write(os.path.join(out, "sort/dev_pairwise.csv"), ("query", "title", "label"), binary(dev))
    write(os.path.join(out, "sort/test_pairwise.csv"), None, [(q, t, f"{char_jaccard(q, t):.4f}") for q, t, _ in test])
    write(os.path.join(out, "rank/train.csv"), ("query", "title", "label"), binary(train))
    write(os.path.join(out, "rank/train_graded.csv"), ("query", "title", "label"), train)
    write(os.path.join(out, "rank/dev_pairwise.csv"), ("query", "title", "label"), binary(dev))
    write(os.path.join(out, "recall/train.csv"), None, unique((q, t) for q, t, l in train if l >= RELEVANT))
    write(os.path.join(out, "recall/corpus.csv"), None, [(t,) for t in unique(t for _, t, _ in all_train + dev + test)])
    write(os.path.join(out, "recall/dev.csv"), None, unique((q, t) for q, t, l in dev if l >= RELEVANT))
    known = dev_queries | set(train_queries)  # train_queries: the held-out ones too
    write(os.path.join(out, "recall/unlabeled.csv"), None, unique((q, t) for q, t, _ in test if q not in known))
    write(os.path.join(out, "sort/dev_graded.csv"), ("query", "title", "label"), dev)
    write(os.path.join(out, "sort/holdout_pairwise.csv"), ("query", "title", "label"), binary(holdout))
    write(os.path.join(out, "sort/holdout_graded.csv"), ("query", "title", "label"), holdout)
    write(os.path.join(out, "recall/holdout.csv"), None, unique((q, t) for q, t, l in holdout if l >= RELEVANT))


if __name__ == "__main__":
    main()

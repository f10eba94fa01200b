import hashlib
import os

import pytest
from conftest import KUAKE, run

from core.data import read_labeled_pairs, read_pairs, read_pairwise_train
from core.errors import DataError

FILES = [
    "sort/train_pairwise.csv",
    "sort/dev_pairwise.csv",
    "sort/test_pairwise.csv",
    "rank/train.csv",
    "rank/dev_pairwise.csv",
    "recall/train.csv",
    "recall/corpus.csv",
    "recall/dev.csv",
    "sort/dev_graded.csv",
    "sort/holdout_pairwise.csv",
    "sort/holdout_graded.csv",
    "recall/holdout.csv",
    "recall/unlabeled.csv",
]


def digest(d):
    return {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest() for f in FILES}


def test_prepare_writes_every_file_deterministically(data_dir, tmp_path):
    p = run(["datasets/prepare_kuake_qtr.py", "--src", KUAKE, "--out", str(tmp_path)])
    for f in FILES:
        assert f in p.stdout and "rows" in p.stdout
    assert digest(tmp_path) == digest(data_dir)


def test_holdout_queries_are_unseen_by_training_and_dev(data_dir):
    """The query-disjoint split: ~15% of the train queries, none in dev, none in any training file."""
    import json

    from core.data import read_tsv
    from core.text import clean_field

    holdout = read_labeled_pairs(str(data_dir / "sort/holdout_graded.csv"), label_values=(0, 1, 2, 3))
    held = {r["query"] for r in holdout}
    binary = read_labeled_pairs(str(data_dir / "sort/holdout_pairwise.csv"))
    assert [(r["query"], r["title"], int(g["label"] >= 2)) for r, g in zip(binary, holdout)] == [
        (g["query"], g["title"], r["label"]) for r, g in zip(binary, holdout)
    ]
    src_train = json.load(open(os.path.join(KUAKE, "train.json"), encoding="utf-8"))
    train_queries = {clean_field(r["query"]) for r in src_train if r["query"].strip() and r["title"].strip()}
    assert held <= train_queries and 0.13 < len(held) / len(train_queries) < 0.17
    dev = {r["query"] for r in read_labeled_pairs(str(data_dir / "sort/dev_pairwise.csv"))}
    assert not held & dev
    for f, cols in (
        ("sort/train_pairwise.csv", ("query", "title", "neg_title", "label", "neg_label")),
        ("rank/train.csv", ("query", "title", "label")),
        ("recall/train.csv", ("query", "title")),
    ):
        trained_on = {r["query"] for r in read_tsv(str(data_dir / f), cols, optional=len(cols) - 2)}
        assert not held & trained_on, f
    recall_holdout = {r["query"] for r in read_tsv(str(data_dir / "recall/holdout.csv"), ("query", "title"))}
    # the unlabelled queries (self-training) are new to train, dev and the held-out split alike
    unlabeled = {r["query"] for r in read_tsv(str(data_dir / "recall/unlabeled.csv"), ("query", "title"))}
    assert len(unlabeled) > 700 and not unlabeled & (train_queries | dev)
    assert recall_holdout <= held
    # every title, held out or not, is still in the corpus the index is built from
    corpus = set(l.rstrip("\n") for l in open(data_dir / "recall/corpus.csv", encoding="utf-8"))
    assert {r["title"] for r in holdout} <= corpus


def test_prepared_files_read_back_with_the_documented_columns(data_dir):
    import json

    triples = read_pairwise_train(str(data_dir / "sort/train_pairwise.csv"))
    dev = read_labeled_pairs(str(data_dir / "sort/dev_pairwise.csv"))
    rank = read_labeled_pairs(str(data_dir / "rank/train.csv"))
    test = read_pairs(str(data_dir / "sort/test_pairwise.csv"))
    src_dev = json.load(open(os.path.join(KUAKE, "dev.json"), encoding="utf-8"))
    assert len(dev) == len([r for r in src_dev if r["query"].strip() and r["title"].strip()])
    # relevance is label >= 2 of the source
    want = sum(int(r["label"]) >= 2 for r in src_dev)
    assert sum(r["label"] for r in dev) == want
    # every triple's title is strictly more relevant than its neg_title for the same query
    src_train = json.load(open(os.path.join(KUAKE, "train.json"), encoding="utf-8"))
    from core.text import clean_field

    label = {}
    for r in src_train:  # the first label of a repeated (query, title) wins, as in the preparation
        label.setdefault((clean_field(r["query"]), clean_field(r["title"])), int(r["label"]))
    for t in triples[:2000]:
        assert label[(t["query"], t["title"])] > label[(t["query"], t["neg_title"])]
        # and carries those graded labels
        assert (t["label"], t["neg_label"]) == (label[(t["query"], t["title"])], label[(t["query"], t["neg_title"])])
    assert len(rank) > 10000 and len(test) > 1000
    corpus = [l.rstrip("\n") for l in open(data_dir / "recall/corpus.csv", encoding="utf-8")]
    assert len(corpus) == len(set(corpus))


def write(path, text, mode="w"):
    if mode == "wb":
        open(path, "wb").write(text)
    else:
        open(path, "w", encoding="utf-8").write(text)
    return str(path)


@pytest.mark.parametrize(
    "content,reader,expect",
    [
        (
            "query\ttitle\tneg_title\nq1\tt1\tn1\nq2\tt2\n",
            read_pairwise_train,
            ":3: expected 3 to 5 tab-separated columns",
        ),
        ("q1\tt1\tn1\t3\t1\nq2\tt2\tn2\t1\t2\n", read_pairwise_train, ":2: label 1 must be greater than neg_label 2"),
        ("q1\tt1\tn1\t3\n", read_pairwise_train, ":1: give both label and neg_label or neither"),
        ("q1\tt1\tn1\t3\t1\nq2\tt2\tn2\n", read_pairwise_train, "some rows have graded labels and some do not"),
        ("q1\tt1\tn1\tx\t1\n", read_pairwise_train, ":1: column 'label' must be an integer"),
        ("q1\tt1\tn1\nq2\t \tn2\n", read_pairwise_train, ":2: column 'title' is empty"),
        ("query\ttitle\tlabel\nq\tt\t2\n", read_labeled_pairs, ":2: column 'label' is 2, allowed values are 0, 1"),
        ("query\ttitle\tlabel\nq\tt\tyes\n", read_labeled_pairs, ":2: column 'label' must be an integer"),
        ("", read_labeled_pairs, "file is empty"),
        ("query\ttitle\tlabel\n", read_labeled_pairs, "no data rows"),
    ],
)
def test_malformed_rows_name_file_line_and_problem(tmp_path, content, reader, expect):
    path = write(tmp_path / "f.csv", content)
    with pytest.raises(DataError) as e:
        reader(path)
    assert path in str(e.value) and expect in str(e.value)


def test_non_utf8_and_missing_file(tmp_path):
    path = write(tmp_path / "g.csv", b"q\tt\t1\n" + "q\tt\t0\n".encode("gbk") + b"\xff\xfe\tt\t1\n", "wb")
    with pytest.raises(DataError, match=r"g.csv:3: not valid UTF-8"):
        read_labeled_pairs(path)
    with pytest.raises(DataError, match="file not found"):
        read_labeled_pairs(str(tmp_path / "nope.csv"))


def test_header_is_optional_and_bom_tolerated(tmp_path):
    a = read_labeled_pairs(write(tmp_path / "a.csv", "\ufeffquery\ttitle\tlabel\nq\tt\t1\nq\tu\t0\n"))
    b = read_labeled_pairs(write(tmp_path / "b.csv", "q\tt\t1\nq\tu\t0\n"))
    assert a == b == [{"query": "q", "title": "t", "label": 1}, {"query": "q", "title": "u", "label": 0}]
    # predict files: the third column is optional
    c = read_pairs(write(tmp_path / "c.csv", "q\tt\t0.5\nq\tu\n"))
    assert [r["title"] for r in c] == ["t", "u"]


def test_padding_aware_batches_cover_every_row_once_and_pad_less():
    import random

    from core.data import RUN_OVERHEAD_TOKENS, padding_aware_batches

    rng = random.Random(0)
    lengths = sorted(rng.randint(12, 64) for _ in range(20))
    ranges = padding_aware_batches(lengths, 32)
    assert ranges[0][0] == 0 and ranges[-1][1] == 20
    assert all(a < b and b - a <= 32 for a, b in ranges) and all(x[1] == y[0] for x, y in zip(ranges, ranges[1:]))

    def cost(rs):
        return sum((b - a) * lengths[b - 1] + RUN_OVERHEAD_TOKENS for a, b in rs)

    assert len(ranges) > 1 and cost(ranges) < cost([(0, 20)])  # mixed lengths: split
    assert padding_aware_batches([20] * 8, 32) == [(0, 8)]  # equal lengths: one run
    assert all(b - a <= 4 for a, b in padding_aware_batches([20] * 10, 4))
    assert padding_aware_batches(lengths, 8, None) == [(0, 8), (8, 16), (16, 20)]  # plain chunks


def test_run_by_length_returns_outputs_in_input_order():
    from core.data import run_by_length

    rows = [[1] * n for n in (5, 60, 7, 33, 2, 64, 18)]
    out = run_by_length(rows, 3, lambda batch: [[len(r)] for r in batch])
    assert out[:, 0].tolist() == [5, 60, 7, 33, 2, 64, 18]


def test_split_between_workers_balances_cost_and_runs_groups_side_by_side():
    from concurrent.futures import ThreadPoolExecutor

    from core.data import RUN_OVERHEAD_TOKENS, padding_aware_batches, run_by_length, split_between_workers

    lengths = sorted([12, 14, 15, 18, 20, 22, 25, 30, 31, 33, 40, 41, 45, 50, 52, 55, 58, 60, 62, 64])

    def cost(ranges):
        return sum((b - a) * lengths[b - 1] + RUN_OVERHEAD_TOKENS for a, b in ranges)

    for workers in (2, 3):
        groups = split_between_workers(lengths, 32, RUN_OVERHEAD_TOKENS, workers)
        flat = [r for g in groups for r in g]
        assert len(groups) == workers and flat[0][0] == 0 and flat[-1][1] == 20
        assert all(x[1] == y[0] for x, y in zip(flat, flat[1:]))  # every row once, in order
        whole = cost(padding_aware_batches(lengths, 32))
        assert max(cost(g) for g in groups) < 1.2 * whole / workers  # each group about its share
    # the longest rows' group is cut short: halving the rows would leave it at 10 x 64
    assert cost(split_between_workers(lengths, 32, RUN_OVERHEAD_TOKENS, 2)[1]) < 10 * 64
    assert split_between_workers([5], 32, RUN_OVERHEAD_TOKENS, 2) == [[(0, 1)]]  # one row is never cut
    assert split_between_workers([], 32, RUN_OVERHEAD_TOKENS, 2) == []
    assert all(b - a <= 4 for g in split_between_workers([20] * 30, 4, None, 2) for a, b in g)

    rows = [[1] * n for n in (5, 60, 7, 33, 2, 64, 18)]
    with ThreadPoolExecutor(2) as pool:
        out = run_by_length(rows, 32, lambda batch: [[len(r)] for r in batch], pool=pool, workers=2)
    assert out[:, 0].tolist() == [5, 60, 7, 33, 2, 64, 18]

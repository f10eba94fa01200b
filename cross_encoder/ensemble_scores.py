r"""Average several rankers' scores of the same pairs on the first ranker's scale: a teacher for
`train_ce.py --soft_labels_file`.

    python cross_encoder/ensemble_scores.py --scores work/ranker_scores.tsv work/pairwise_scores.tsv \
        --output work/teacher.tsv
Each file is `query\ttitle\tscore` (recall/mine_negatives.py --scores_output, deploy/python/predict.py
--output_file) over the same pairs in the same order. Rankers' scores live on different scales (a
cross-encoder's probability, a pairwise model's sigmoid), so each later file's scores are first mapped
onto the first file's: a pair's score becomes the first ranker's score at the same rank among all pairs
(quantile mapping); the output score is the mean of the mapped scores, clipped to [0, 1].
"""

import argparse

import numpy as np

from core.cli import run_cli
from core.errors import DataError


def quantile_map(values, reference) -> np.ndarray:
    """`values` mapped onto the distribution of `reference`: the value of rank r (0-based, ties in
    input order) among n becomes reference's quantile (r + 0.5) / n (numpy's linear interpolation)."""
    values = np.asarray(values, dtype=np.float64)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return np.quantile(np.sort(np.asarray(reference, dtype=np.float64)), (ranks + 0.5) / len(values))


def main(argv=None) -> str:
    from core.data import read_tsv

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scores", nargs="+", required=True, help="query\\ttitle\\tscore files of the same pairs")
    p.add_argument("--output", required=True, help="query\\ttitle\\tscore: the mean on the first file's scale")
    args = p.parse_args(argv)
    if len(args.scores) < 2:
        p.error("--scores: give two or more files (the first sets the scale)")
    files = [read_tsv(path, ("query", "title", "score"), float_columns=("score",)) for path in args.scores]
    pairs = [(r["query"], r["title"]) for r in files[0]]
    for path, rows in zip(args.scores[1:], files[1:]):
        if len(rows) != len(pairs):
            raise DataError(f"{path}: {len(rows)} pairs, {args.scores[0]} has {len(pairs)}")
        for lineno, (r, pair) in enumerate(zip(rows, pairs), 1):
            if (r["query"], r["title"]) != pair:
                raise DataError(f"{path}: pair {lineno} is not {args.scores[0]}'s pair {lineno}")
    first = np.array([r["score"] for r in files[0]])
    mapped = [first] + [quantile_map([r["score"] for r in rows], first) for rows in files[1:]]
    mean = np.clip(np.mean(mapped, axis=0), 0.0, 1.0)
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines(f"{q}\t{t}\t{s:.6f}\n" for (q, t), s in zip(pairs, mean))
    print(f"{len(pairs)} pairs: the mean of {len(files)} rankers' scores on {args.scores[0]}'s scale -> {args.output}")
    return args.output


if __name__ == "__main__":
    run_cli(main)

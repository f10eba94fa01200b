"""Ranking metrics: exact AUC, per-query NDCG@k and MRR, and bootstrap intervals (a mean gain, an AUC)."""

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


def _average_ranks(x):
    """1-based ranks of x, ties receiving the average of their ranks."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    # boundaries of runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Exact ROC AUC (Mann-Whitney U); a tie between a positive and a negative counts 1/2.

    labels: 0/1 values; scores: higher means more relevant.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"auc: {labels.size} labels but {scores.size} scores")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("auc: labels must be 0 or 1")
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"auc: needs both classes, got {n_pos} positive and {n_neg} negative")
    ranks = _average_ranks(scores)
    u = ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels: Sequence[int], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold (for plots)."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(y.sum(), 1)]
    fpr = np.r_[0.0, fps / max(y.size - y.sum(), 1)]
    return fpr, tpr


def _group(queries, labels, scores):
    groups = OrderedDict()
    for q, l, s in zip(queries, labels, scores):
        groups.setdefault(q, []).append((float(s), float(l)))
    return groups


def dcg(gains: Sequence[float]) -> float:
    gains = np.asarray(gains, dtype=np.float64)
    if gains.size == 0:
        return 0.0
    return float(((2.0**gains - 1.0) / np.log2(np.arange(2, gains.size + 2))).sum())


def ndcg_at_k(queries: Sequence[str], labels: Sequence[int], scores: Sequence[float], k: int = 10) -> float:
    """Mean over queries of NDCG@k with graded labels (gain 2^label - 1).

    Within a query, ties in score are broken by input order. Queries whose labels are all
    zero have no ideal ordering and are skipped (the convention of most toolkits).
    """
    values = []
    for items in _group(queries, labels, scores).values():
        ideal = dcg(sorted((l for _, l in items), reverse=True)[:k])
        if ideal == 0.0:
            continue
        ranked = [l for _, l in sorted(items, key=lambda it: -it[0])][:k]
        values.append(dcg(ranked) / ideal)
    return float(np.mean(values)) if values else 0.0


def mrr(
    queries: Sequence[str], labels: Sequence[int], scores: Sequence[float], k: int | None = None, relevant: int = 1
) -> float:
    """Mean reciprocal rank of the first item with label >= relevant, over every query.

    A query with no relevant item in its top k (or none at all) contributes 0.
    """
    values = []
    for items in _group(queries, labels, scores).values():
        ranked = [l for _, l in sorted(items, key=lambda it: -it[0])]
        if k is not None:
            ranked = ranked[:k]
        rr = 0.0
        for i, l in enumerate(ranked, start=1):
            if l >= relevant:
                rr = 1.0 / i
                break
        values.append(rr)
    return float(np.mean(values)) if values else 0.0


def recall_at_k(retrieved: dict, relevant: dict, ks: Sequence[int] = (1, 5, 10, 20, 50)) -> dict:
    """Recall@k over every query: the share of a query's relevant documents found in its top k,
    averaged over all queries (a query with nothing retrieved counts 0; several relevant
    documents per query are allowed). retrieved: ranked id lists; relevant: id collections."""
    if len(retrieved) != len(relevant):
        raise ValueError(f"recall_at_k: {len(retrieved)} result lists for {len(relevant)} queries")
    out = {}
    for k in ks:
        values = []
        for ranked, rel in zip(retrieved, relevant):
            rel = set(rel)
            if not rel:
                raise ValueError("recall_at_k: a query has no relevant document")
            values.append(len(rel & set(list(ranked)[:k])) / len(rel))
        out[k] = float(np.mean(values)) if values else 0.0
    return out


def reciprocal_ranks(retrieved: Sequence, relevant: Sequence, k: int = 10) -> list[float]:
    """Per query, 1 / the rank of its first relevant document within the top k (0 when none is there)."""
    values = []
    for ranked, rel in zip(retrieved, relevant):
        rel = set(rel)
        values.append(next((1.0 / i for i, doc in enumerate(list(ranked)[:k], start=1) if doc in rel), 0.0))
    return values


def mrr_at_k(retrieved: Sequence, relevant: Sequence, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document within the top k, over every query."""
    values = reciprocal_ranks(retrieved, relevant, k)
    return float(np.mean(values)) if values else 0.0


def paired_bootstrap_ci(
    before: Sequence[float], after: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Confidence interval of mean(after) - mean(before) over the same queries (paired bootstrap: the
    queries are resampled with replacement, each keeping its two values); deterministic for a seed."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if before.ndim != 1 or before.shape != after.shape or before.size == 0:  # checked before numpy broadcasts
        raise ValueError("paired_bootstrap_ci: before and after need the same number (> 0) of per-query values")
    diff = after - before
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def query_bootstrap_auc_ci(
    queries: Sequence[str],
    labels: Sequence[int],
    scores: Sequence[float],
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Confidence interval of the AUC over (query, title) pairs, resampling whole queries with
    replacement (the titles of one query are not independent); deterministic for a seed."""
    labels = np.asarray(labels).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not len(queries) == labels.size == scores.size:
        raise ValueError(f"query_bootstrap_auc_ci: {len(queries)} queries, {labels.size} labels, {scores.size} scores")
    groups = [  # per query: (labels, scores)
        (np.asarray([lab for _, lab in g], dtype=np.int64), np.asarray([sc for sc, _ in g]))
        for g in _group(queries, labels, scores).values()
    ]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = [groups[i] for i in rng.integers(0, len(groups), size=len(groups))]
        lab = np.concatenate([g[0] for g in pick])
        if 0 < lab.sum() < lab.size:  # a resample of one class has no AUC
            values.append(auc(lab, np.concatenate([g[1] for g in pick])))
    if not values:
        raise ValueError("query_bootstrap_auc_ci: no resample holds both classes")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))

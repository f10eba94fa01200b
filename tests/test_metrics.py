import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from core.errors import DataError
from core.metrics import (
    auc,
    mrr,
    mrr_at_k,
    ndcg_at_k,
    paired_bootstrap_ci,
    query_bootstrap_auc_ci,
    reciprocal_ranks,
    roc_curve,
)


def brute_auc(labels, scores):
    pos = [s for l, s in zip(labels, scores) if l == 1]
    neg = [s for l, s in zip(labels, scores) if l == 0]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_is_exact_with_ties(seed):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 2, 300)
    scores = rng.randint(0, 7, 300) / 7.0  # many ties
    assert auc(labels, scores) == pytest.approx(brute_auc(labels, scores), abs=1e-12)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_rejects_one_class_and_bad_labels():
    with pytest.raises(ValueError, match="both classes"):
        auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 or 1"):
        auc([0, 2], [0.1, 0.2])


def test_roc_curve_area_matches_auc():
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 2, 200)
    scores = rng.rand(200) + labels * 0.3
    fpr, tpr = roc_curve(labels, scores)
    assert fpr[0] == 0 and tpr[-1] == pytest.approx(1.0)
    assert np.trapz(tpr, fpr) == pytest.approx(auc(labels, scores), abs=1e-9)


def test_ndcg_per_query_matches_sklearn_mean():
    rng = np.random.RandomState(1)
    queries, labels, scores, per_query = [], [], [], []
    for q in range(30):
        n = rng.randint(2, 8)
        l = rng.randint(0, 4, n)
        s = rng.rand(n)
        queries += [f"q{q}"] * n
        labels += l.tolist()
        scores += s.tolist()
        if l.sum() > 0:
            per_query.append(ndcg_score([(2.0**l - 1)], [s], k=3))
    assert ndcg_at_k(queries, labels, scores, k=3) == pytest.approx(np.mean(per_query), abs=1e-9)


def test_mrr_counts_every_query():
    queries = ["a", "a", "a", "b", "b", "c"]
    labels = [0, 1, 0, 1, 0, 0]
    scores = [0.9, 0.8, 0.1, 0.7, 0.2, 0.5]
    # a: first relevant at rank 2; b: rank 1; c: no relevant item -> 0
    assert mrr(queries, labels, scores) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert mrr(queries, labels, scores, k=1) == pytest.approx(1.0 / 3)
    assert not math.isnan(ndcg_at_k(["x"], [0], [0.3]))


def test_recall_at_k_and_mrr_at_k_count_every_query():
    from core.metrics import mrr_at_k, recall_at_k

    rng = np.random.RandomState(3)
    retrieved, relevant = [], []
    for _ in range(40):
        ranked = list(rng.permutation(30)[: rng.randint(0, 25)])  # some queries retrieve few or nothing
        rel = set(rng.choice(30, rng.randint(1, 4), replace=False).tolist())
        retrieved.append(ranked)
        relevant.append(rel)
    got = recall_at_k(retrieved, relevant, ks=(1, 5, 20))
    for k in (1, 5, 20):
        brute = sum(sum(1 for d in rel if d in ranked[:k]) / len(rel) for ranked, rel in zip(retrieved, relevant)) / 40
        assert got[k] == pytest.approx(brute)
    brute_mrr = 0.0
    for ranked, rel in zip(retrieved, relevant):
        hits = [i for i, d in enumerate(ranked[:10], start=1) if d in rel]
        brute_mrr += 1.0 / hits[0] if hits else 0.0
    assert mrr_at_k(retrieved, relevant, 10) == pytest.approx(brute_mrr / 40)
    with pytest.raises(ValueError, match="no relevant document"):
        recall_at_k([[1]], [set()])


@pytest.mark.parametrize("weight", [0.0, 0.25, 0.5, 1.0])
def test_fusion_weights_the_recall_order(weight):
    """core.search.fuse: recall_weight/(k + recall rank) + 1/(k + ranker rank), computed here by brute
    force over random scores; weight 0 is the ranker's order, ties kept in recall order."""
    from core.search import fuse

    rng = np.random.RandomState(int(weight * 100))
    scores = rng.randint(0, 6, 20).astype(float)  # ties in the ranker's scores too
    ranker_rank = {
        i: 1 + sum(s > scores[i] or (s == scores[i] and j < i) for j, s in enumerate(scores)) for i in range(20)
    }
    want = [weight / (10 + i + 1) + 1 / (10 + ranker_rank[i]) for i in range(20)]
    order, fused = fuse(scores, 10, weight)
    np.testing.assert_allclose(fused, want)
    assert list(order) == sorted(range(20), key=lambda i: (-want[i], i))
    if weight == 0:
        assert list(order) == sorted(range(20), key=lambda i: (-scores[i], i))


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_score_fusion_adds_the_min_max_scaled_scores(weight):
    """core.search.fuse_scores: weight * (s - min)/(max - min) of the recall similarities plus the same
    of the ranker's scores, computed here by hand; ties keep the recall order; a list of equal scores
    scales to 0, so it leaves the order to the other list."""
    from core.search import fuse_scores

    rng = np.random.RandomState(int(weight * 10))
    sims = np.sort(rng.uniform(0.8, 0.9, 20))[::-1]
    scores = rng.randint(0, 6, 20) / 5.0
    want = [
        weight * (sims[i] - sims.min()) / (sims.max() - sims.min())
        + (scores[i] - scores.min()) / (scores.max() - scores.min())
        for i in range(20)
    ]
    order, fused = fuse_scores(sims, scores, weight)
    np.testing.assert_allclose(fused, want)
    assert list(order) == sorted(range(20), key=lambda i: (-want[i], i))
    assert list(fuse_scores(sims, np.full(20, 0.3), weight)[0]) == list(range(20))  # equal ranker scores
    # a gap counts: the ranker's 0.99 against 0.01 beats a small recall lead, a 0.51 against 0.49 does not
    assert list(fuse_scores([0.9, 0.8, 0.7], [0.01, 0.99, 0.5], 1.0)[0])[0] == 1
    assert list(fuse_scores([0.9, 0.89, 0.7], [0.49, 0.51, 0.0], 1.0)[0])[0] == 0
    from core.search import rerank_order

    np.testing.assert_array_equal(rerank_order(scores, "score_fused", 10, weight, sims)[0], order)
    with pytest.raises(DataError, match="score_fused needs the recall similarities"):
        rerank_order(scores, "score_fused", 10, weight)
    with pytest.raises(DataError, match="3 recall scores for 2 ranker scores"):
        fuse_scores([0.9, 0.8, 0.7], [0.1, 0.2], weight)
    with pytest.raises(DataError, match="recall_weight must be a number from 0 to 1"):
        fuse_scores([0.9], [0.1], 2.0)


def test_fusion_weight_below_one_lets_the_ranker_win_a_swap():
    """Recall ranks 1 and 2, ranker ranks 2 and 1, k = 10: with weight 1 the fused scores tie and the
    recall order stands; with any weight below 1 the ranker's first title comes first."""
    from core.search import fuse

    assert list(fuse([0.2, 0.9], 10, 1.0)[0]) == [0, 1]
    assert list(fuse([0.2, 0.9], 10, 0.9)[0]) == [1, 0]
    for bad in (-0.1, 1.5, True, "half", float("nan")):
        with pytest.raises(DataError, match="recall_weight must be a number from 0 to 1"):
            fuse([0.2, 0.9], 10, bad)


def test_paired_bootstrap_ci_brackets_the_mean_gain_and_pairs_the_queries():
    rng = np.random.default_rng(1)
    before = rng.uniform(0.5, 0.9, 400)
    after = before + rng.normal(0.02, 0.05, 400)
    lo, hi = paired_bootstrap_ci(before, after)
    gain = float(np.mean(after - before))
    assert lo < gain < hi and 0 < lo and hi - lo < 0.02
    assert paired_bootstrap_ci(before, after) == (lo, hi)  # deterministic for a seed
    # paired: a constant gain has no spread, however much the queries differ from each other
    assert paired_bootstrap_ci(before, before + 0.01) == pytest.approx((0.01, 0.01))
    # unpaired noise of the same size would give a far wider interval than the paired one
    shuffled = rng.permutation(after)
    wide = paired_bootstrap_ci(before, shuffled)
    assert wide[1] - wide[0] > 2 * (hi - lo)
    with pytest.raises(ValueError, match="same number"):
        paired_bootstrap_ci([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="same number"):
        paired_bootstrap_ci([0.1, 0.2], [0.3, 0.4, 0.5])
    with pytest.raises(ValueError, match="same number"):
        paired_bootstrap_ci([], [])


def test_reciprocal_ranks_per_query_average_to_mrr_at_k():
    retrieved = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevant = [{"b", "c"}, {"nothing"}, {"p"}]
    assert reciprocal_ranks(retrieved, relevant, 10) == [0.5, 0.0, 1.0]
    assert reciprocal_ranks(retrieved, relevant, 1) == [0.0, 0.0, 1.0]  # b is past the top 1
    assert mrr_at_k(retrieved, relevant, 10) == pytest.approx(0.5)


def test_query_bootstrap_auc_ci_brackets_the_auc_and_resamples_whole_queries():
    rng = np.random.default_rng(2)
    queries = [f"q{i // 3}" for i in range(900)]  # 300 queries of 3 titles
    labels = rng.integers(0, 2, 900)
    scores = labels + rng.normal(0, 1.2, 900)
    lo, hi = query_bootstrap_auc_ci(queries, labels, scores)
    assert lo < auc(labels, scores) < hi and hi - lo < 0.15
    assert query_bootstrap_auc_ci(queries, labels, scores) == (lo, hi)  # deterministic for a seed
    # perfectly separated scores: every resample scores 1
    assert query_bootstrap_auc_ci(queries, labels, labels.astype(float)) == (1.0, 1.0)
    # titles that share their query's label and (mostly) its score: 10 queries decide the AUC, and
    # resampling whole queries spreads it far wider than resampling the 900 pairs one by one would
    q_of = np.arange(900) // 90
    same_label = q_of % 2
    same_score = rng.normal(0, 1, 10)[q_of] + same_label * 0.5 + rng.normal(0, 0.01, 900)
    by_query = query_bootstrap_auc_ci([f"q{j}" for j in q_of], same_label, same_score)
    by_pair = query_bootstrap_auc_ci([f"p{i}" for i in range(900)], same_label, same_score)
    assert by_query[1] - by_query[0] > 5 * (by_pair[1] - by_pair[0])
    with pytest.raises(ValueError, match="900 queries, 899 labels"):
        query_bootstrap_auc_ci(queries, labels[:-1], scores)
    with pytest.raises(ValueError, match="no resample holds both classes"):
        query_bootstrap_auc_ci(["a", "a"], [1, 1], [0.1, 0.2])

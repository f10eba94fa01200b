"""End-to-end search: embed the query, recall top-K from Milvus, re-rank with a ranker, sort.

    pipe = SearchPipeline(EncoderEngine(encoder_dir), MilvusIndex(uri, name), RankerEngine(ranker_dir))
    pipe.search("感冒吃什么药", top_k=10)
    -> [{"rank": 1, "id": 17, "text": "...", "recall_similarity": 0.83, "rank_score": 0.91,
         "fused_score": 0.18}, ...]

Re-ranking modes: "fused" orders by reciprocal-rank fusion of the recall order and
the ranker's order, score w/(k + recall rank) + 1/(k + ranker rank) with ranks from 1 and the recall
weight w (1 by default; below 1 a strong ranker is pulled less towards the recall order);
"score_fused" (the default) by w * minmax(recall similarity) + minmax(ranker score) over the recalled list
(`fuse_scores`: a large gap between scores counts more than a small one; at weight 1 it beats "fused" by
0.5-0.8 NDCG@10 points for the cross-encoder, the pairwise model and the binary cross-encoder alike, on
KUAKE-QTR dev and unseen queries, benchmarks/results/recall_e2e_ensemble.md); "ranker" orders by the
ranker's score alone (PaddleNLP's run_system.py). On KUAKE-QTR the binary cross-encoder alone lowers
NDCG@10 of the recalled list while either fusion raises it (benchmarks/results/recall_quality.md).
Without a ranker, or with rerank=False, the recall order is returned (rank_score is then None).

Hybrid recall (lexical_weight > 0, an index built with --lexical): the query's dense top
max(recall_num, HYBRID_DEPTH) and its BM25 top as many (Milvus's BM25 over jieba tokens) are merged by
`hybrid`, cosine + lexical_weight * BM25 / the list's best BM25, and the best recall_num go on; their
recall_similarity is that fused score. On KUAKE-QTR, at the weight chosen on training queries, it
lifts the zero-shot encoder's recall@5 by 1.0-1.6 points, but not the end result on unseen queries after
the ranker (benchmarks/results/recall_hybrid.md), so lexical_weight is 0 by default.
"""

import threading
import time
from collections.abc import Sequence

import numpy as np

from .data import check_text
from .errors import DataError
from .interfaces import Embedder, Index, Scorer

RERANK_MODES = ("fused", "score_fused", "ranker")
HYBRID_DEPTH = 100  # dense and lexical candidates merged by hybrid recall
DEFAULT_RERANK = "score_fused"
MAX_RECALL_NUM = 1000


def fuse(scores: Sequence[float], k: int = 10, recall_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal-rank fusion of the input order (recall) and the order of `scores` (ranker):
    recall_weight/(k + recall rank) + 1/(k + ranker rank).

    Returns (order, fused): indices best first (ties keep the recall order) and each row's fused score."""
    check_recall_weight(recall_weight)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(scores)
    ranker_rank = np.empty(n)
    ranker_rank[np.argsort(-scores, kind="mergesort")] = np.arange(1, n + 1)
    fused = recall_weight / (k + np.arange(1, n + 1)) + 1.0 / (k + ranker_rank)
    return np.argsort(-fused, kind="mergesort"), fused


def minmax(values) -> np.ndarray:
    """Scores min-max scaled to [0, 1] over one list (a list of equal scores scales to 0)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    span = v.max() - v.min() if len(v) else 0.0
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def fuse_scores(
    recall_scores: Sequence[float], scores: Sequence[float], recall_weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Score fusion of one recalled list: recall_weight * minmax(recall similarity) + minmax(ranker
    score), each min-max scaled to [0, 1] over the list (a list of equal scores scales to 0), as
    Weaviate's relativeScoreFusion. Unlike `fuse`, a large gap between two scores weighs more than a
    small one. Returns (order, fused): indices best first (ties keep the recall order)."""
    check_recall_weight(recall_weight)
    if len(recall_scores) != len(scores):
        raise DataError(f"fuse_scores: {len(recall_scores)} recall scores for {len(scores)} ranker scores")
    fused = recall_weight * minmax(recall_scores) + minmax(scores)
    return np.argsort(-fused, kind="mergesort"), fused


def rerank_order(
    scores: Sequence[float],
    mode: str = "fused",
    k: int = 10,
    recall_weight: float = 1.0,
    recall_scores: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Order of recalled rows (given in recall order) after re-ranking by `mode`: (order, fused scores
    or None for mode "ranker"). Mode "score_fused" needs the rows' recall similarities (recall_scores)."""
    if mode == "fused":
        return fuse(scores, k, recall_weight)
    if mode == "score_fused":
        if recall_scores is None:
            raise DataError("rerank score_fused needs the recall similarities of the rows")
        return fuse_scores(recall_scores, scores, recall_weight)
    return np.argsort(-np.asarray(scores, dtype=np.float64).reshape(-1), kind="mergesort"), None


def hybrid(dense: Sequence, lexical: Sequence, lexical_weight: float, top_k: int) -> list:
    """One query's dense hits and BM25 hits (core.index.Hit lists, best first) -> the best `top_k` by
    cosine + lexical_weight * BM25 / max BM25 of the list, as Hits whose similarity is that score. A
    title only the lexical side found takes the lowest cosine of the dense list; one only the dense side
    found has BM25 0. Ties keep the dense order, then the lexical order."""
    check_lexical_weight(lexical_weight)
    floor = min((h.similarity for h in dense), default=0.0)
    best = max((h.similarity for h in lexical), default=0.0)
    bm25 = {h.id: h.similarity / best for h in lexical} if best > 0 else {}
    merged = {h.id: h for h in dense}
    for h in lexical:
        merged.setdefault(h.id, h._replace(similarity=floor))
    scored = [h._replace(similarity=h.similarity + lexical_weight * bm25.get(h.id, 0.0)) for h in merged.values()]
    order = np.argsort(-np.array([h.similarity for h in scored], dtype=np.float64), kind="mergesort")
    return [scored[i] for i in order[:top_k]]


def check_weight(weight: object, name: str) -> float:
    """A fusion weight, a number from 0 to 1; DataError naming `name` otherwise."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise DataError(f"{name} must be a number from 0 to 1, got {weight!r}")
    return float(weight)


def check_lexical_weight(weight: object) -> float:
    return check_weight(weight, "lexical_weight")


def check_recall_weight(weight: object) -> float:
    return check_weight(weight, "recall_weight")


def check_rerank_mode(mode: object) -> str:
    if mode not in RERANK_MODES:
        raise DataError(f"rerank must be one of {', '.join(RERANK_MODES)} (or true/false), got {mode!r}")
    return mode


class SearchPipeline:
    def __init__(
        self,
        encoder: Embedder,
        index: Index,
        ranker: Scorer | None = None,
        recall_num: int = 50,
        max_top_k: int = 200,
        rerank: str = DEFAULT_RERANK,
        rrf_k: int = 10,
        recall_weight: float = 1.0,
        lexical_weight: float = 0.0,
    ):
        self.encoder = encoder
        self.index = index
        self.ranker = ranker
        self.recall_num = recall_num
        self.max_top_k = max_top_k
        self.rerank = check_rerank_mode(rerank)
        self.rrf_k = rrf_k
        self.recall_weight = check_recall_weight(recall_weight)
        self.lexical_weight = check_lexical_weight(lexical_weight)
        self._local = threading.local()  # the server searches from several threads

    @property
    def last_timings(self) -> dict:
        """Stage timings (ms) of this thread's last search."""
        return getattr(self._local, "timings", {})

    def recall(self, queries: Sequence[str], top_k: int, deadline: float | None = None) -> list:
        """deadline: time.monotonic() by which the index must have answered (None: no bound)."""
        emb = self.encoder.embed(queries, "query")

        def left():
            return None if deadline is None else deadline - time.monotonic()

        if not self.lexical_weight:
            return self.index.search(emb, top_k, timeout=left())
        depth = max(top_k, HYBRID_DEPTH)
        # hybrid recall needs a core.interfaces.LexicalIndex (MilvusIndex.search_text refuses a plain index)
        dense = self.index.search(emb, depth, timeout=left())
        lexical = self.index.search_text(queries, depth, timeout=left())
        return [hybrid(d, t, self.lexical_weight, top_k) for d, t in zip(dense, lexical)]

    def search(
        self,
        query: str,
        top_k: int = 10,
        recall_num: int | None = None,
        rerank: bool | str = True,
        recall_weight: float | None = None,
        deadline: float | None = None,
    ) -> list[dict]:
        """One query -> top_k results; the timings of each stage are in `self.last_timings`.

        rerank: True (this pipeline's mode), False (recall order), or a mode of RERANK_MODES;
        recall_weight: the fusion's weight of the recall order (None: this pipeline's); deadline: the
        time.monotonic() by which the index must answer (core.errors.DeadlineExceeded past it)."""
        check_text(query, "query")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= self.max_top_k:
            raise DataError(f"top_k must be an integer from 1 to {self.max_top_k}, got {top_k!r}")
        if recall_num is not None and (
            isinstance(recall_num, bool) or not isinstance(recall_num, int) or not 1 <= recall_num <= MAX_RECALL_NUM
        ):
            raise DataError(f"recall_num must be an integer from 1 to {MAX_RECALL_NUM}, got {recall_num!r}")
        weight = self.recall_weight if recall_weight is None else check_recall_weight(recall_weight)
        mode = self.rerank if rerank is True else (None if rerank is False else check_rerank_mode(rerank))
        recall_num = max(recall_num or self.recall_num, top_k)
        t0 = time.perf_counter()
        hits = self.recall([query], recall_num, deadline)[0]
        t1 = time.perf_counter()
        scores = fused = None
        if mode and self.ranker is not None and hits:
            scores = np.asarray(self.ranker.score([(query, h.text) for h in hits]), dtype=np.float64).reshape(-1)
            order, fused = rerank_order(scores, mode, self.rrf_k, weight, [h.similarity for h in hits])
        else:
            order = np.arange(len(hits))
        t2 = time.perf_counter()
        self._local.timings = {"recall_ms": 1000 * (t1 - t0), "rank_ms": 1000 * (t2 - t1)}
        out = []
        for r, i in enumerate(order[:top_k], start=1):
            h = hits[i]
            out.append(
                {
                    "rank": r,
                    "id": h.id,
                    "text": h.text,
                    "recall_similarity": round(h.similarity, 6),
                    "rank_score": None if scores is None else round(float(scores[i]), 6),
                }
            )
            if fused is not None:
                out[-1]["fused_score"] = round(float(fused[i]), 6)
        return out

"""End-to-end search: embed the query, recall top-K from Milvus, re-rank with a ranker, sort.

    pipe = SearchPipeline(EncoderEngine(encoder_dir), MilvusIndex(uri, name), RankerEngine(ranker_dir))
    pipe.search("感冒吃什么药", top_k=10)
    -> [{"rank": 1, "id": 17, "text": "...", "recall_similarity": 0.83, "rank_score": 0.91}, ...]

Without a ranker the recall order is returned (rank_score is then None).
"""
import threading
import time

import numpy as np

from .data import check_text
from .errors import DataError


class SearchPipeline:
    def __init__(self, encoder, index, ranker=None, recall_num=50, max_top_k=200):
        self.encoder = encoder
        self.index = index
        self.ranker = ranker
        self.recall_num = recall_num
        self.max_top_k = max_top_k
        self._local = threading.local()  # the server searches from several threads

    @property
    def last_timings(self):
        """Stage timings (ms) of this thread's last search."""
        return getattr(self._local, "timings", {})

    def recall(self, queries, top_k):
        emb = self.encoder.embed(queries, "query")
        return self.index.search(emb, top_k)

    def search(self, query, top_k=10, recall_num=None, rerank=True):
        """One query -> top_k results; the timings of each stage are in `self.last_timings`."""
        check_text(query, "query")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= self.max_top_k:
            raise DataError(f"top_k must be an integer from 1 to {self.max_top_k}, got {top_k!r}")
        recall_num = max(recall_num or self.recall_num, top_k)
        t0 = time.perf_counter()
        hits = self.recall([query], recall_num)[0]
        t1 = time.perf_counter()
        scores = None
        if rerank and self.ranker is not None and hits:
            scores = np.asarray(self.ranker.score([(query, h.text) for h in hits]), dtype=np.float64).reshape(-1)
            order = np.argsort(-scores, kind="mergesort")
        else:
            order = np.arange(len(hits))
        t2 = time.perf_counter()
        self._local.timings = {"recall_ms": 1000 * (t1 - t0), "rank_ms": 1000 * (t2 - t1)}
        out = []
        for r, i in enumerate(order[:top_k], start=1):
            h = hits[i]
            out.append({"rank": r, "id": h.id, "text": h.text, "recall_similarity": round(h.similarity, 6),
                        "rank_score": None if scores is None else round(float(scores[i]), 6)})
        return out

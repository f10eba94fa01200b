"""End-to-end search as a registered service: `POST /search` and the Pipeline service "search".

    POST /search  {"query", "top_k", "recall_num", "rerank": true | false | "fused" | "score_fused" | "ranker",
                   "recall_weight": 0..1 (the fusion's weight of the recall side; default: the config's)}
                  -> {"query", "results": [{"rank", "id", "text", "recall_similarity", "rank_score",
                      "fused_score"}], "timings_ms"}
    Pipeline      value[i]: a query text or JSON {"query", "top_k", "rerank", "recall_weight"}
                  -> value[i]: JSON results

The query is embedded by the encoder service, recalled from Milvus, re-ranked by the ranker
service (core/search.py), each model call and each Milvus call bounded by the request's deadline
(a Milvus that does not answer in time: 504; one that fails or is down: 503).
"""

import json
import time
from collections.abc import Sequence

import numpy as np

from core.errors import DataError, DeadlineExceeded
from core.interfaces import Pair
from core.search import MAX_RECALL_NUM, RERANK_MODES, SearchPipeline
from deploy.protocols import wire
from deploy.service import Ctx


class _Bound:
    """A model service seen by core.search as an engine, for one request."""

    def __init__(self, svc, ctx):
        self.svc, self.ctx = svc, ctx

    def embed(self, texts: Sequence[str], input_type: str = "query") -> np.ndarray:
        return self.svc.embed(texts, self.ctx, input_type)[0]

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return self.svc.score(pairs, self.ctx, what="recalled titles")


class SearchService:
    def __init__(self, cfg, encoder, ranker, index, limits):
        self.cfg = cfg
        self.encoder, self.ranker, self.index = encoder, ranker, index
        self.limits = limits
        self.max_recall = min(MAX_RECALL_NUM, limits.max_rows)

    def _options(self, obj):
        top_k = wire.int_field(obj, "top_k", self.cfg["top_k"], 1, 200, what="top_k")
        recall_num = obj.get("recall_num")
        if recall_num is not None:
            recall_num = wire.int_field(obj, "recall_num", None, 1, self.max_recall, what="recall_num")
        rerank = obj.get("rerank", True)
        if rerank is None:
            rerank = True
        if not isinstance(rerank, bool) and rerank not in RERANK_MODES:
            raise DataError(
                f"rerank must be one of {', '.join(RERANK_MODES)} (or true/false), got {str(rerank)[:40]!r}"
            )
        return top_k, recall_num, rerank, obj.get("recall_weight")  # checked by SearchPipeline.search

    def search(
        self,
        query: object,
        ctx: Ctx,
        top_k: int,
        recall_num: int | None = None,
        rerank: bool | str = True,
        recall_weight: float | None = None,
        what: str = "query",
    ) -> tuple[list, dict]:
        if time.monotonic() > ctx.deadline:
            raise DeadlineExceeded("the request did not finish within its deadline (request_timeout_s)")
        query = self.limits.text(query, what)
        pipe = SearchPipeline(
            _Bound(self.encoder, ctx),
            self.index,
            _Bound(self.ranker, ctx) if self.ranker is not None else None,
            recall_num=min(self.cfg["recall_num"], self.max_recall),
            rerank=self.cfg["rerank"],
            rrf_k=self.cfg["rrf_k"],
            recall_weight=self.cfg["recall_weight"],
            lexical_weight=self.cfg["lexical_weight"],
        )
        results = pipe.search(
            query, top_k, recall_num=recall_num, rerank=rerank, recall_weight=recall_weight, deadline=ctx.deadline
        )
        return results, pipe.last_timings

    def http(self, body: bytes, ctx: Ctx) -> dict:
        obj = wire.json_object(wire.parse_json(body), "body (with 'query' and optional 'top_k')")
        top_k, recall_num, rerank, recall_weight = self._options(obj)
        results, timings = self.search(obj.get("query"), ctx, top_k, recall_num, rerank, recall_weight)
        return {"query": obj["query"], "results": results, "timings_ms": {k: round(v, 2) for k, v in timings.items()}}

    def pipeline(self, key: list, values: list, tensors: list, ctx: Ctx) -> tuple[list, list]:
        if tensors:
            raise DataError("the search service takes query texts in 'value', not tensors")
        out = []
        for i, v in enumerate(values):
            obj = None
            if isinstance(v, str) and v[:1] == "{":
                try:
                    obj = wire.parse_json(v, f"value[{i}]")
                except DataError:
                    obj = None
            if isinstance(obj, dict):
                top_k, recall_num, rerank, recall_weight = self._options(obj)
                v = obj.get("query")
            else:
                top_k, recall_num, rerank, recall_weight = self.cfg["top_k"], None, True, None
            results, _ = self.search(v, ctx, top_k, recall_num, rerank, recall_weight, what=f"value[{i}]")
            out.append(json.dumps(results, ensure_ascii=False))
        return key, out

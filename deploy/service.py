"""One served model: engine + batcher + the per-request limits that apply before any work.

    protocol module --(texts / pairs / tensor rows, Ctx)--> ModelService --> Batcher --> engine

Every entry point checks the request's size first (rows, characters per text, tokens), then
tokenizes, then waits for the batcher no longer than the request's deadline.
"""

import itertools
import logging
import time
import uuid
from collections.abc import Sequence

import numpy as np

from core.data import check_text
from core.engine import EncoderEngine, RankerEngine
from core.errors import DataError, TooLarge
from core.interfaces import Pair
from deploy.batching import Batcher
from deploy.metrics import Metrics
from deploy.serving_conf import load_aliases

log = logging.getLogger("deploy.service")
_ids = itertools.count(1)


class Ctx:
    """One request: an id (in logs and the X-Request-Id header) and a deadline (time.monotonic())."""

    __slots__ = ("id", "deadline")

    def __init__(self, timeout_s: float, request_id: str | None = None):
        self.id = request_id or f"{uuid.uuid4().hex[:8]}-{next(_ids)}"
        self.deadline = time.monotonic() + timeout_s


class Limits:
    def __init__(self, cfg):
        self.max_rows = cfg["max_pairs_per_request"]
        self.max_text_chars = cfg["max_text_chars"]
        self.max_tokens = cfg["max_tokens_per_request"]
        self.timeout_s = cfg["request_timeout_s"]

    def rows(self, n: int, what: str) -> None:
        if n > self.max_rows:
            raise TooLarge(f"{n} {what} in one request; the limit is {self.max_rows} (max_pairs_per_request)")

    def text(self, text: object, what: str) -> str:
        """A non-empty string of at most max_text_chars characters that encodes as UTF-8."""
        check_text(text, what)
        if len(text) > self.max_text_chars:
            raise TooLarge(f"{what} has {len(text)} characters; the limit is {self.max_text_chars} (max_text_chars)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise DataError(f"{what} holds a lone UTF-16 surrogate at character {e.start}") from None
        return text


class ModelService:
    def __init__(self, cfg: dict, limits: Limits, metrics: Metrics, queue_rows: int = 4096):
        self.cfg = cfg
        self.name = cfg["name"]
        self.kind = cfg["kind"]
        self.limits = limits
        cls = RankerEngine if self.kind == "ranker" else EncoderEngine
        self.engine = cls(
            cfg["model_dir"],
            backend=cfg["backend"],
            max_seq_length=cfg["max_seq_length"],
            cpu_threads=cfg["cpu_threads"],
            batch_size=cfg["max_batch_size"],
            replicas=cfg.get("replicas", 1),
        )
        self.feed_alias, self.fetch_alias = load_aliases(
            cfg["model_dir"], "predict" if self.kind == "ranker" else "output_embedding"
        )
        self.metrics = metrics
        self.batcher = Batcher(
            self.engine,
            cfg["max_batch_size"],
            cfg["max_wait_ms"],
            max_queue_rows=queue_rows,
            on_batch=lambda rows, reqs: metrics.batch(self.name, rows),
        )
        metrics.watch_queue(self.name, lambda: self.batcher.queued_rows)

    def _need(self, kind):
        if self.kind != kind:
            raise DataError(f"model '{self.name}' is a {self.kind}, not a{'n' if kind[0] in 'aeiou' else ''} {kind}")

    def score(self, pairs: Sequence[Pair], ctx: Ctx, what: str = "pairs") -> np.ndarray:
        """(query, title) pairs -> probabilities. Texts must have passed Limits.text."""
        self._need("ranker")
        self.limits.rows(len(pairs), what)
        with self.batcher.arriving() as submit:
            encoded = self.engine.encode(pairs)  # the query of a list is tokenized once
            fut = submit(encoded)
        self.metrics.pairs(self.name, len(pairs))
        return np.asarray(self.batcher.wait(fut, ctx.deadline), dtype=np.float32).reshape(-1)

    def embed(self, texts: Sequence[str], ctx: Ctx, input_type: str = "query") -> tuple[np.ndarray, int]:
        """Texts -> (L2-normalised embeddings [n, dim], tokens used)."""
        self._need("encoder")
        self.limits.rows(len(texts), "inputs")
        with self.batcher.arriving() as submit:
            encoded = self.engine.encode(texts, input_type)
            fut = submit(encoded)
        self.metrics.pairs(self.name, len(texts))
        out = np.asarray(self.batcher.wait(fut, ctx.deadline)).reshape(len(texts), -1)
        return out, sum(len(e[0]) for e in encoded)

    def run_tensors(self, named: Sequence[tuple[str, np.ndarray]], ctx: Ctx) -> np.ndarray:
        """Pre-tokenized rows [(feed name or alias, int array [rows, seq])] -> outputs, batched with
        everything else. Rows, tokens, ids, token types and length are checked first."""
        feeds = {}
        for alias, arr in named:
            real = self.feed_alias.get(alias, alias if alias in self.feed_alias.values() else None)
            if real is None:
                raise DataError(f"unknown feed name '{alias}' (the model takes {', '.join(self.feed_alias)})")
            if real in feeds:
                raise DataError(f"feed '{alias}' is given twice")
            feeds[real] = arr
        for name, arr in feeds.items():
            if getattr(arr, "ndim", 0) == 2:
                self.limits.rows(arr.shape[0], f"rows in feed '{name}'")
                if arr.size > self.limits.max_tokens:
                    raise TooLarge(
                        f"feed '{name}' holds {arr.size} tokens; the limit is {self.limits.max_tokens} "
                        "(max_tokens_per_request)"
                    )
        ids, types = self.engine.check_feeds(feeds)
        rows = list(zip(ids.tolist(), types.tolist()))
        self.metrics.pairs(self.name, len(rows))
        return np.asarray(self.batcher.run(rows, ctx.deadline))

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "backend": self.cfg["backend"],
            "max_seq_length": self.cfg["max_seq_length"],
            "replicas": self.engine.replicas,
        }

    def close(self) -> None:
        self.batcher.stop()

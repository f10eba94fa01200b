"""The boundaries between components, as structural types (`typing.Protocol`).

Anything with these methods plugs in: the inference engines (core/engine.py) are `Scorer`,
`Embedder` and `BatchEngine`; the server's model services (deploy/service.py) are bound to a
request and seen by core/search.py as `Scorer` / `Embedder`; `core/index.MilvusIndex` is an `Index`
and a `LexicalIndex`.
"""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

Pair = tuple[str, str]
Encoded = tuple[list[int], list[int]]  # (input_ids, token_type_ids) of one row


@runtime_checkable
class Scorer(Protocol):
    """(query, title) pairs -> relevance probabilities, shape [n]."""

    def score(self, pairs: Sequence[Pair]) -> np.ndarray: ...


@runtime_checkable
class Embedder(Protocol):
    """Texts -> L2-normalised embeddings, shape [n, dim]; input_type "query" or "passage"."""

    def embed(self, texts: Sequence[str], input_type: str = "query") -> np.ndarray: ...


@runtime_checkable
class BatchEngine(Protocol):
    """What the batcher drives: encoded rows of many requests -> one output row each."""

    def run_encoded(self, encoded: Sequence[Encoded]) -> np.ndarray: ...


@runtime_checkable
class Index(Protocol):
    """An ANN index over texts: query embeddings [n, dim] -> n lists of hits (id, text, similarity); timeout
    (seconds) bounds the call (core.errors.DeadlineExceeded past it)."""

    def search(
        self, embeddings: np.ndarray, top_k: int = 10, timeout: float | None = None
    ) -> list[list[tuple[int, str, float]]]: ...


@runtime_checkable
class LexicalIndex(Index, Protocol):
    """An Index that also searches by the query's words (BM25): what hybrid recall needs
    (core/search.py, lexical_weight > 0); hits are namedtuples (id, text, score)."""

    def search_text(
        self, queries: Sequence[str], top_k: int = 10, timeout: float | None = None
    ) -> list[list[tuple[int, str, float]]]: ...

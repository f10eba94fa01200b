"""The ANN index of the recall stage, on Milvus through pymilvus.

    index = MilvusIndex("work_dirs/milvus.db", "kuake_titles")   # Milvus Lite: a local path (default)
    index = MilvusIndex("http://127.0.0.1:19530", "kuake_titles") # any Milvus server, same code
    index.build(texts, embed_batch)       # versioned collection, then the alias moves to it
    index.search(query_embeddings, top_k) # [[Hit(id, text, similarity), ...], ...]

A collection holds (id INT64, text VARCHAR, embedding FLOAT_VECTOR) with an inner-product index
over L2-normalised embeddings (so the similarity is the cosine). Built with `lexical=True` it also
holds Milvus's own BM25 of the text (a SPARSE_FLOAT_VECTOR field `lexical` filled by a BM25 function
over jieba tokens), which `search_text` queries: the lexical side of hybrid recall (core/search.py).
The name users pass is an alias: `build` writes a new collection `<name>__v<time>` next to the
one in use and moves the alias only once every row is in, so searches keep answering from the old
collection during a rebuild, and a rebuild that fails leaves it untouched.
"""

import contextlib
import json
import os
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Sequence

import numpy as np

from .errors import DataError, DeadlineExceeded, Unavailable

Hit = namedtuple("Hit", "id text similarity")
TEXT_MAX_BYTES = 65535
INDEX_TYPES = ("FLAT", "HNSW")
LEXICAL_FIELD = "lexical"
LEXICAL_ANALYZER = {"tokenizer": "jieba"}
BUILD_HINT = (
    "build it with: bash scripts/build_index.sh MODEL_DIR CORPUS_FILE "
    "(python recall/build_index.py --model_dir ... --corpus_file ... --milvus_uri {uri} --collection {name})"
)


class IndexError_(Unavailable, LookupError):
    """The index is missing, busy or does not fit the query."""


class _NotLoaded(IndexError_):
    """The collection is released (Milvus error 101): load it before searching."""


COLLECTION_NOT_LOADED = 101  # Milvus's merr.ErrCollectionNotLoaded


def is_lite(uri: str) -> bool:
    """A local path (Milvus Lite) rather than a server address."""
    return "://" not in uri


def connect(uri: str, token: str | None = None) -> object:
    import logging

    from pymilvus import MilvusClient

    logging.getLogger("milvus_lite").setLevel(logging.WARNING)
    logging.getLogger("faiss").setLevel(logging.WARNING)
    # Milvus Lite's gRPC server logs a traceback for RPCs it does not implement (pymilvus falls back)
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    from pymilvus.exceptions import MilvusException

    if is_lite(uri):
        parent = os.path.dirname(os.path.abspath(uri))
        os.makedirs(parent, exist_ok=True)
        if not uri.endswith(".db"):
            raise IndexError_(f"Milvus Lite paths end in .db, got {uri!r} (a server is http://host:port)")
    try:
        # pymilvus pings idle connections every 10 s; Milvus Lite's gRPC server counts those as abuse
        # and answers GOAWAY "too_many_pings" (logged, then reconnected). Ping only during calls. A Milvus
        # that was down is tried again within a second, not after gRPC's backoff of up to two minutes.
        options = {
            "grpc.keepalive_permit_without_calls": False,
            "grpc.initial_reconnect_backoff_ms": 200,
            "grpc.min_reconnect_backoff_ms": 200,
            "grpc.max_reconnect_backoff_ms": 1000,
        }
        return MilvusClient(uri=uri, token=token or "", grpc_options=options)
    except MilvusException as e:
        if is_lite(uri):
            raise IndexError_(
                f"cannot open the Milvus Lite database {uri}: another process (a running search server?) holds it. "
                "Stop that process, or reach the same data through the Milvus port the server exposes "
                "(search.milvus_port in its config) with --milvus_uri http://127.0.0.1:PORT"
            ) from None
        raise IndexError_(f"cannot connect to Milvus at {uri}: {e.message if hasattr(e, 'message') else e}") from None


class MilvusIndex:
    def __init__(self, uri, name, token=None, client=None):
        if not name or not name.replace("_", "").isalnum():
            raise IndexError_(f"collection names use letters, digits and '_', got {name!r}")
        self.uri = uri
        self.name = name
        self.client = client or connect(uri, token)
        self._dim = None
        self._lexical = None
        self._loaded = False
        self._local = threading.local()  # the server searches from several threads, each with its own deadline

    # ------------------------------------------------------------ calls
    @contextlib.contextmanager
    def bounded(self, timeout: float | None):
        """Within it, the Milvus calls of this thread all end within `timeout` seconds from now (None: no
        bound of its own): each call gets what is left. A bound inside another never loosens it."""
        before = getattr(self._local, "deadline", None)
        bounds = [d for d in (before, None if timeout is None else time.monotonic() + timeout) if d is not None]
        self._local.deadline = min(bounds, default=None)
        try:
            yield
        finally:
            self._local.deadline = before

    def _call(self, method: str, *args, **kw):
        """self.client.<method>(...) under this thread's bound; a Milvus that does not answer in time raises
        DeadlineExceeded (504), one that fails or cannot be reached IndexError_ (503), each naming the server."""
        import grpc
        from pymilvus.exceptions import MilvusException

        deadline = getattr(self._local, "deadline", None)
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded(f"the request's deadline passed before Milvus at {self.uri} answered")
        try:
            return getattr(self.client, method)(*args, timeout=timeout, **kw)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                within = "in time" if timeout is None else f"within {timeout:.1f} s (the request's deadline)"
                raise DeadlineExceeded(f"Milvus at {self.uri} did not answer {within}") from None
            raise IndexError_(f"Milvus at {self.uri} failed ({e.code().name}): {str(e.details())[:200]}") from None
        except MilvusException as e:
            cls = _NotLoaded if getattr(e, "code", None) == COLLECTION_NOT_LOADED else IndexError_
            raise cls(f"Milvus at {self.uri} failed: {str(getattr(e, 'message', e))[:200]}") from None

    def _search_loaded(self, **kw):
        """client.search on a loaded collection. A collection found released (Milvus restarted: a Lite
        database reopens with its collections released) is loaded again and searched once more."""
        self._ensure_loaded()
        try:
            return self._call("search", self.name, **kw)
        except _NotLoaded:
            self._loaded = False
            self._ensure_loaded()
            return self._call("search", self.name, **kw)

    # ------------------------------------------------------------ inspection
    def _target(self):
        """The collection the alias points to, or None."""
        try:
            aliases = self._call("list_aliases").get("aliases", [])
        except DeadlineExceeded:
            raise
        except Exception:  # noqa: BLE001 - servers without alias listing
            aliases = []
        if self.name in aliases:
            return self._call("describe_alias", self.name)["collection_name"]
        if self._call("has_collection", self.name):  # a plain collection (e.g. made by other tools)
            return self.name
        return None

    def exists(self) -> bool:
        return self._target() is not None

    def _require(self):
        target = self._target()
        if target is None:
            raise IndexError_(
                f"no index '{self.name}' in Milvus at {self.uri}; " + BUILD_HINT.format(uri=self.uri, name=self.name)
            )
        return target

    def info(self, timeout: float | None = None) -> dict:
        """{'collection', 'rows', 'dim', 'meta'} of the collection in use. timeout: as `search`."""
        with self.bounded(timeout):
            target = self._require()
            desc = self._call("describe_collection", target)
            dim = next(int(f["params"]["dim"]) for f in desc["fields"] if f["name"] == "embedding")
            try:
                meta = json.loads(desc.get("description") or "{}")
            except ValueError:
                meta = {}
            rows = int(self._call("get_collection_stats", target).get("row_count", 0))
            return {"collection": target, "rows": rows, "dim": dim, "meta": meta}

    def has_lexical(self) -> bool:
        """Whether the collection in use holds the BM25 field that `search_text` needs."""
        if self._lexical is None:
            desc = self._call("describe_collection", self._require())
            self._lexical = any(f["name"] == LEXICAL_FIELD for f in desc["fields"])
        return self._lexical

    def dim(self) -> int:
        if self._dim is None:
            self._dim = self.info()["dim"]
        return self._dim

    # ---------------------------------------------------------------- build
    def build(
        self,
        texts: Sequence[str],
        embed: Callable[[list[str]], np.ndarray],
        dim: int,
        batch_size: int = 256,
        index_type: str = "HNSW",
        hnsw_m: int = 16,
        ef_construction: int = 200,
        meta: dict | None = None,
        progress: Callable[[int, int], None] | None = None,
        lexical: bool = False,
    ) -> dict:
        """Embed `texts` (embed(list_of_texts) -> [n, dim] float32) into a new collection, then switch.

        progress(done, total): called after every inserted batch. lexical: also index each text's BM25
        (Milvus computes it on insert) for `search_text`. Returns info() of the new index.
        """
        from pymilvus import DataType, Function, FunctionType

        if index_type not in INDEX_TYPES:
            raise IndexError_(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        if not texts:
            raise DataError("the corpus is empty: nothing to index")
        for i, t in enumerate(texts):
            if len(t.encode("utf-8")) > TEXT_MAX_BYTES:
                raise DataError(
                    f"corpus text {i + 1} is {len(t.encode('utf-8'))} bytes; Milvus VARCHAR holds "
                    f"{TEXT_MAX_BYTES} (read files with core.data.read_corpus(path, max_bytes) to "
                    "get the file and line)"
                )
        c = self.client
        old = self._target()
        if old == self.name:
            raise IndexError_(
                f"'{self.name}' is a plain collection, not an alias this tool manages; "
                "choose another --collection or drop it first"
            )
        self.drop_stale(keep=old)
        new = f"{self.name}__v{time.strftime('%Y%m%d%H%M%S')}{int(time.time() * 1000) % 1000:03d}"
        schema = c.create_schema(
            auto_id=False,
            enable_dynamic_field=False,
            description=json.dumps(dict(meta or {}, built=time.strftime("%Y-%m-%dT%H:%M:%S"))),
        )
        schema.add_field("id", DataType.INT64, is_primary=True)
        text_kw = dict(enable_analyzer=True, analyzer_params=LEXICAL_ANALYZER) if lexical else {}
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, **text_kw)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=int(dim))
        params = c.prepare_index_params()
        extra = {"M": hnsw_m, "efConstruction": ef_construction} if index_type == "HNSW" else {}
        params.add_index(field_name="embedding", index_type=index_type, metric_type="IP", params=extra)
        if lexical:
            schema.add_field(LEXICAL_FIELD, DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=[LEXICAL_FIELD],
                )
            )
            params.add_index(field_name=LEXICAL_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection(new, schema=schema, index_params=params)
        try:
            done = 0
            for start in range(0, len(texts), batch_size):
                chunk = texts[start : start + batch_size]
                emb = np.asarray(embed(chunk), dtype=np.float32)
                if emb.shape != (len(chunk), dim):
                    raise IndexError_(
                        f"the encoder returned embeddings of shape {emb.shape}, expected {(len(chunk), dim)}"
                    )
                c.insert(
                    new,
                    [{"id": start + j, "text": t, "embedding": e.tolist()} for j, (t, e) in enumerate(zip(chunk, emb))],
                )
                done += len(chunk)
                if progress:
                    progress(done, len(texts))
            c.flush(new)
            c.load_collection(new)
        except BaseException:
            c.drop_collection(new)  # the old index stays as it was
            raise
        if old is None:
            c.create_alias(new, self.name)
        else:
            c.alter_alias(new, self.name)
            c.release_collection(old)
            c.drop_collection(old)
        self._dim = None
        self._lexical = None
        self._loaded = True
        return self.info()

    def stale(self, keep: str | None = None) -> list[str]:
        """Collections `<name>__v<digits>` that the alias does not point to: left by builds that were
        killed before they could drop their half-built collection."""
        keep = keep if keep is not None else self._target()
        prefix = self.name + "__v"
        return [
            n
            for n in self.client.list_collections()
            if n.startswith(prefix) and n[len(prefix) :].isdigit() and n != keep
        ]

    def drop_stale(self, keep: str | None = None) -> list[str]:
        """Drop what `stale` lists (never the collection in use). Returns their names. Two builds of one
        alias at the same time are not supported: the second would drop the first's collection."""
        dropped = self.stale(keep)
        for n in dropped:
            self.client.drop_collection(n)
        return dropped

    # --------------------------------------------------------------- search
    def load(self) -> None:
        self._call("load_collection", self._require())

    def _ensure_loaded(self) -> None:
        if not self._loaded:  # a reopened Lite database starts with its collections released
            self.load()
            self._loaded = True

    def search(
        self, embeddings: np.ndarray, top_k: int = 10, ef: int | None = None, timeout: float | None = None
    ) -> list[list[Hit]]:
        """embeddings [n, dim] -> n lists of Hit sorted by similarity (highest first). timeout: seconds for
        all the Milvus calls this takes (DeadlineExceeded past it; None: no bound)."""
        with self.bounded(timeout):
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.ndim == 1:
                emb = emb[None, :]
            if emb.ndim != 2:
                raise DataError(f"query embeddings must be [n, dim], got shape {emb.shape}")
            if not isinstance(top_k, int) or top_k < 1:
                raise DataError(f"top_k must be a positive integer, got {top_k!r}")
            dim = self.dim()
            if emb.shape[1] != dim:
                raise IndexError_(
                    f"query embeddings have dim {emb.shape[1]} but index '{self.name}' holds {dim}-dim "
                    "vectors: use the encoder that built it, or rebuild the index with this encoder"
                )
            params = {"metric_type": "IP", "params": {"ef": max(ef or 0, top_k, 64)}}
            res = self._search_loaded(data=emb.tolist(), limit=top_k, output_fields=["text"], search_params=params)
            return [[Hit(int(h["id"]), h["entity"]["text"], float(h["distance"])) for h in row] for row in res]

    def search_text(self, queries: Sequence[str], top_k: int = 10, timeout: float | None = None) -> list[list[Hit]]:
        """Query texts -> lists of Hit by BM25 over the index's texts (highest first; a title sharing no
        token with the query is not listed). The index must be built with lexical=True. timeout: as `search`."""
        with self.bounded(timeout):
            if not isinstance(top_k, int) or top_k < 1:
                raise DataError(f"top_k must be a positive integer, got {top_k!r}")
            if not self.has_lexical():
                raise IndexError_(
                    f"index '{self.name}' in Milvus at {self.uri} has no BM25 field for lexical search: rebuild it "
                    "with python recall/build_index.py ... --lexical, or set search.lexical_weight: 0"
                )
            res = self._search_loaded(data=list(queries), anns_field=LEXICAL_FIELD, limit=top_k, output_fields=["text"])
            # BM25 scores are >= 0; Milvus Lite reports them negated (its distances sort ascending)
            return [[Hit(int(h["id"]), h["entity"]["text"], abs(float(h["distance"]))) for h in row] for row in res]

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass

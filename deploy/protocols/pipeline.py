"""Paddle Serving's Pipeline protocol (HTTP `POST /{service}/prediction` and gRPC `PipelineService.inference`).

    request  {"key": [...], "value": [...], "logid": 0, "clientip": ""}  (+ tensors over gRPC)
    reply    {"err_no": 0, "err_msg": "", "key": [...], "value": [...], "tensors": []}

A service name maps to a registered Pipeline service: one per served model (a ranker takes
`{"query", "title"}` values as JSON or Python-dict text and answers a list literal of
probabilities; an encoder takes texts and answers a JSON list of embeddings) and, when search is
configured, the search service (deploy/protocols/search.py). Errors become err_no != 0 here, in
`error_reply`, and nowhere else.
"""

import json

import numpy as np

from core.errors import DataError, NotFound, PipelineError
from deploy.protocols import wire
from deploy.service import Ctx, ModelService


def reply(key: list, value: list, err_no: int = wire.OK, err_msg: str = "") -> dict:
    return {"err_no": err_no, "err_msg": err_msg, "key": key, "value": value, "tensors": []}


def error_reply(err: PipelineError) -> dict:
    return reply([], [], err.err_no, str(err))


class RankerPipeline:
    """value[i]: one (query, title) pair -> value[0]: list literal of the probabilities."""

    def __init__(self, svc):
        self.svc = svc

    def pipeline(self, key: list, values: list, tensors: list, ctx: Ctx) -> tuple[list, list]:
        if tensors:
            return tensor_request(self.svc, tensors, ctx, self)
        limits = self.svc.limits
        pairs = []
        for i, v in enumerate(values):
            obj = wire.parse_literal(v, f"value[{i}]") if isinstance(v, str) else v
            if not isinstance(obj, dict) or "query" not in obj or "title" not in obj:
                raise DataError(f"value[{i}] must be a dict with 'query' and 'title', got {str(v)[:80]!r}")
            pairs.append(
                (limits.text(obj["query"], f"value[{i}] query"), limits.text(obj["title"], f"value[{i}] title"))
            )
        return [self.svc.fetch_alias], [wire.list_literal(self.svc.score(pairs, ctx))]


class EncoderPipeline:
    """value[i]: a text (or JSON {"text"} / {"query"}) -> value[0]: JSON list of embeddings."""

    def __init__(self, svc):
        self.svc = svc

    def pipeline(self, key: list, values: list, tensors: list, ctx: Ctx) -> tuple[list, list]:
        if tensors:
            return tensor_request(self.svc, tensors, ctx, self)
        texts = []
        for i, v in enumerate(values):
            if isinstance(v, str) and v[:1] == "{":
                try:
                    obj = json.loads(v)
                except (ValueError, RecursionError):
                    obj = None
                if isinstance(obj, dict):
                    v = obj.get("text", obj.get("query"))
            texts.append(self.svc.limits.text(v, f"value[{i}]"))
        emb, _ = self.svc.embed(texts, ctx)
        return [self.svc.fetch_alias], [json.dumps(np.round(emb, 7).tolist())]


def tensor_request(svc: ModelService, tensors: list, ctx: Ctx, handler: object) -> tuple[list, list]:
    """Tensor-format requests (gRPC): str_data values, or numeric input_ids/token_type_ids as
    int64_data/int_data or np.save bytes (loaded without pickle)."""
    values, named = [], []
    max_values = svc.limits.max_tokens
    for i, t in enumerate(tensors):
        name = t.name or f"tensors[{i}]"
        if len(t.str_data):
            values.extend(t.str_data)
        elif t.byte_data:
            arr = wire.load_npy_bytes(t.byte_data, name)
            if arr.ndim not in (1, 2, 3) or arr.size == 0:
                raise DataError(f"tensor '{name}': byte_data must be a non-empty 1-3 dimensional array")
            named.append((name, wire.int_array(arr, name, list(arr.shape), max_values)))
        elif len(t.int64_data) or len(t.int_data):
            data = t.int64_data if len(t.int64_data) else t.int_data
            if len(data) > max_values:
                raise DataError(f"tensor '{name}' holds {len(data)} values; the limit is {max_values}")
            named.append((name, wire.int_array(np.asarray(data, dtype=np.int64), name, list(t.shape), max_values)))
        else:
            raise DataError(
                f"tensor '{name}' carries no data this model can use (str_data, int64_data, int_data or byte_data)"
            )
    if values and named:
        raise DataError("a request carries either str_data values or id tensors, not both")
    if values:
        svc.limits.rows(len(values), "values")
        return handler.pipeline([str(i) for i in range(len(values))], values, (), ctx)
    out = svc.run_tensors(named, ctx)
    if out.ndim == 2 and out.shape[1] > 1:
        return [svc.fetch_alias], [json.dumps(np.round(out, 7).tolist())]
    return [svc.fetch_alias], [wire.list_literal(out.reshape(-1))]


class PipelineProtocol:
    """Dispatches a Pipeline request to the service registered under its name."""

    def __init__(self, services, limits, default):
        self.services = services  # name -> object with .pipeline(key, value, tensors, ctx)
        self.limits = limits
        self.default = default

    def call(self, name: str, key: object, value: object, tensors: list, ctx: Ctx) -> dict:
        svc = self.services.get(name or self.default)
        if svc is None:
            raise NotFound(f"no service named '{str(name)[:80]}' (serving: {', '.join(self.services)})")
        if not tensors:
            if not isinstance(key, list) or not isinstance(value, list):
                raise DataError(
                    f"'key' and 'value' must be lists, got {wire.type_name(key)} and {wire.type_name(value)}"
                )
            if len(key) != len(value):
                raise DataError(f"'key' has {len(key)} entries but 'value' has {len(value)}")
            if not value:
                raise DataError("no pairs: 'value' is empty")
            self.limits.rows(len(value), "pairs")
            for i, k in enumerate(key):
                if not isinstance(k, str):
                    raise DataError(f"key[{i}] must be a string, got {wire.type_name(k)}")
                try:
                    k.encode("utf-8")
                except UnicodeEncodeError:
                    raise DataError(f"key[{i}] holds a lone UTF-16 surrogate") from None
        keys, values = svc.pipeline(list(key or []), list(value or []), list(tensors or []), ctx)
        return reply(keys, values)

    def http(self, name: str, body: bytes, ctx: Ctx) -> dict:
        obj = wire.json_object(wire.parse_json(body), "body (with 'key' and 'value')")
        logid = obj.get("logid", 0)
        if logid is not None and (isinstance(logid, bool) or not isinstance(logid, int)):
            raise DataError(f"'logid' must be an integer, got {wire.type_name(logid)}")
        return self.call(name, obj.get("key"), obj.get("value"), (), ctx)

    def rpc(self, request: object, ctx: Ctx) -> dict:
        return self.call(request.name, list(request.key), list(request.value), list(request.tensors), ctx)

"""Paddle Serving C++ Serving's General model protocol (`POST /GeneralModelService/inference`).

Body: JSON `{"tensor": [{"int64_data": [...], "elem_type": 0, "name", "alias_name", "shape"}, ...],
"fetch_var_names": [...], "log_id": 0}` or `Content-Type: application/proto` (the
general_model Request message), gzip accepted. Reply: `{"outputs": [{"tensor": [{"float_data",
"elem_type": 1, "shape", "name", "alias_name"}], "engine_name"}], "log_id", "err_no", "err_msg"}`
in the same encoding. The tensors are pre-tokenized ids: every row goes through the model
service's checks (rows, tokens, ids, token types, length) and its batcher.
"""

import json

import numpy as np
from google.protobuf.message import DecodeError

from core.errors import DataError, PipelineError
from deploy.proto import general_model_service_pb2 as pb
from deploy.protocols import wire
from deploy.service import Ctx

INT_FIELDS = ("int64_data", "int_data")
OTHER_FIELDS = ("float_data", "float64_data", "uint32_data", "bool_data", "str_data", "byte_data")


class GeneralProtocol:
    def __init__(self, svc):
        self.svc = svc

    # ---------------------------------------------------------------- parsing
    def _json_tensor(self, i, t):
        if not isinstance(t, dict):
            raise DataError(f"tensor[{i}] must be an object, got {wire.type_name(t)}")
        name = t.get("alias_name") or t.get("name")
        if not isinstance(name, str) or not name:
            raise DataError(f"tensor[{i}] needs a string 'alias_name' or 'name'")
        name = name[:80]
        elem = t.get("elem_type", 0)
        if isinstance(elem, bool) or not isinstance(elem, int):
            raise DataError(f"tensor '{name}': 'elem_type' must be an integer, got {wire.type_name(elem)}")
        data_key = next((k for k in INT_FIELDS if t.get(k) not in (None, [])), None)
        if data_key is None:
            other = next((k for k in OTHER_FIELDS if t.get(k) not in (None, [], "")), None)
            if other:
                raise DataError(f"tensor '{name}' must hold integers (int64_data or int_data), got {other}")
            raise DataError(f"tensor '{name}' has no int64_data/int_data")
        return name, wire.int_array(t[data_key], name, t.get("shape"), self.svc.limits.max_tokens)

    def parse_json(self, body: bytes) -> tuple[list, list, int]:
        obj = wire.json_object(wire.parse_json(body))
        tensors = obj.get("tensor")
        if not isinstance(tensors, list) or not tensors:
            raise DataError("'tensor' must be a non-empty list of tensors")
        if len(tensors) > 8:
            raise DataError(f"'tensor' lists {len(tensors)} tensors; the model takes 2")
        named = [self._json_tensor(i, t) for i, t in enumerate(tensors)]
        fetch = obj.get("fetch_var_names") or []
        if not isinstance(fetch, list) or not all(isinstance(f, str) for f in fetch):
            raise DataError("'fetch_var_names' must be a list of strings")
        return named, fetch, self._log_id(obj.get("log_id"))

    @staticmethod
    def _log_id(v):
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
            raise DataError(f"'log_id' must be a non-negative integer, got {str(v)[:40]!r}")
        return v

    def parse_proto(self, body: bytes) -> tuple[list, list, int]:
        req = pb.Request()
        try:
            req.ParseFromString(body)
        except (DecodeError, RecursionError) as e:
            raise DataError(f"body is not a valid general_model Request protobuf ({e})") from None
        if not len(req.tensor):
            raise DataError("request has no tensor")
        if len(req.tensor) > 8:
            raise DataError(f"request has {len(req.tensor)} tensors; the model takes 2")
        named = []
        for t in req.tensor:
            name = (t.alias_name or t.name or "?")[:80]
            if len(t.int64_data):
                data = np.asarray(t.int64_data, dtype=np.int64)
            elif len(t.int_data):
                data = np.asarray(t.int_data, dtype=np.int64)
            elif len(t.float_data) or len(t.float64_data):
                raise DataError(f"tensor '{name}' must hold integers (int64_data or int_data), got float data")
            else:
                raise DataError(f"tensor '{name}' has no int64_data/int_data")
            named.append((name, wire.int_array(data, name, list(t.shape), self.svc.limits.max_tokens)))
        return named, list(req.fetch_var_names), int(req.log_id)

    # --------------------------------------------------------------- handling
    def run(self, named: list, fetch: list, ctx: Ctx) -> tuple[str, np.ndarray]:
        svc = self.svc
        allowed = {svc.fetch_alias, "probability", "output_embedding"}
        unknown = [f[:80] for f in fetch if f not in allowed]
        if unknown:
            raise DataError(f"unknown fetch_var_names {unknown} (this model fetches '{svc.fetch_alias}')")
        out = np.asarray(svc.run_tensors(named, ctx), dtype=np.float32)
        return svc.fetch_alias, out

    def handle(
        self, body: bytes, is_proto: bool, accept_encoding: str | None, ctx: Ctx
    ) -> tuple[int, bytes, str, dict]:
        """-> (status, payload bytes, media type, headers)."""
        named, fetch, log_id = self.parse_proto(body) if is_proto else self.parse_json(body)
        fetch_name, out = self.run(named, fetch, ctx)
        shape, values = list(out.shape), [float(v) for v in out.reshape(-1)]
        if is_proto:
            r = pb.Response(log_id=log_id, err_no=0)
            o = r.outputs.add(engine_name="general_infer_0")
            o.tensor.add(float_data=values, elem_type=1, shape=shape, name=fetch_name, alias_name=fetch_name)
            data, headers = wire.maybe_gzip(r.SerializeToString(), accept_encoding)
            return 200, data, "application/proto", headers
        reply = {
            "outputs": [
                {
                    "tensor": [
                        {
                            "float_data": values,
                            "elem_type": 1,
                            "shape": shape,
                            "name": fetch_name,
                            "alias_name": fetch_name,
                        }
                    ],
                    "engine_name": "general_infer_0",
                }
            ],
            "log_id": log_id,
            "err_no": 0,
            "err_msg": "",
        }
        data, headers = wire.maybe_gzip(json.dumps(reply).encode(), accept_encoding)
        return 200, data, "application/json", headers

    @staticmethod
    def error(err: PipelineError, is_proto: bool) -> tuple[bytes, str]:
        if is_proto:
            return pb.Response(err_no=err.err_no, err_msg=str(err)).SerializeToString(), "application/proto"
        return json.dumps({"err_no": err.err_no, "err_msg": str(err)}).encode(), "application/json"

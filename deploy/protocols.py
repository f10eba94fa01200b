"""Parsing and building the wire formats the server speaks (see DESIGN.md section 5).

Nothing a client sends is evaluated or unpickled: Python-literal values go through
`ast.literal_eval` (literals only) and `byte_data` through `np.load(allow_pickle=False)`.
"""
import ast
import gzip
import io
import json
import zlib

import numpy as np

from core.data import check_text
from core.errors import DataError

# Paddle Serving pipeline error numbers (ChannelDataErrcode)
OK, NO_SERVICE, UNKNOWN, INPUT_PARAMS_ERROR = 0, 7, 8, 9

ELEM_TYPES = {0: ("int64_data", np.int64), 1: ("float_data", np.float32), 2: ("int_data", np.int32),
              3: ("float64_data", np.float64)}


def decode_utf8(body, what="request body"):
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} is not valid UTF-8 (byte {e.start})") from None


def gunzip(body, limit):
    """Decompress a gzip body, refusing more than `limit` bytes of output."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise DataError(f"Content-Encoding gzip, but the body is not gzip data ({e})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise DataError(f"decompressed body exceeds the {limit}-byte limit")
    return out


def parse_json(text, what="request body"):
    try:
        return json.loads(text)
    except ValueError as e:
        raise DataError(f"{what} is not valid JSON ({e})") from None


def parse_literal(text, what):
    """JSON, or a Python literal such as str(dict) with single quotes (never eval)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise DataError(f"{what} is neither JSON nor a Python literal") from None


def pair_from_value(value, i):
    obj = parse_literal(value, f"value[{i}]") if isinstance(value, str) else value
    if not isinstance(obj, dict) or "query" not in obj or "title" not in obj:
        raise DataError(f"value[{i}] must be a dict with 'query' and 'title', got {str(value)[:80]!r}")
    return check_text(obj["query"], f"value[{i}] query"), check_text(obj["title"], f"value[{i}] title")


def text_from_value(value, i):
    if isinstance(value, str):
        try:
            obj = json.loads(value)
            if isinstance(obj, dict):
                value = obj.get("text", obj.get("query"))
        except ValueError:
            pass
    return check_text(value, f"value[{i}]")


def pipeline_reply(key, value, err_no=OK, err_msg=""):
    return {"err_no": err_no, "err_msg": err_msg, "key": key, "value": value, "tensors": []}


def list_literal(values):
    """A list literal both json.loads and Python's eval read (the clients' `eval(ret.value[0])`)."""
    return json.dumps([float(v) for v in values])


def load_npy_bytes(data, name):
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise DataError(f"tensor '{name}': byte_data holds a pickled object array; refused "
                            f"(send numeric arrays)") from None
        raise DataError(f"tensor '{name}': byte_data is not a .npy array ({e})") from None
    except Exception as e:  # noqa: BLE001 - any malformed payload is a client error
        raise DataError(f"tensor '{name}': byte_data is not a .npy array ({type(e).__name__})") from None


def tensor_array(t, name):
    """numpy array of a General-model JSON tensor dict (int64_data/int_data/float_data...)."""
    shape = t.get("shape") or []
    data = None
    for key, dtype in (("int64_data", np.int64), ("int_data", np.int64), ("float_data", np.float32),
                       ("float64_data", np.float64)):
        if t.get(key):
            data = np.asarray(t[key], dtype=dtype)
            break
    if data is None:
        raise DataError(f"tensor '{name}' has no int64_data/int_data (byte and string tensors are not accepted)")
    return _reshape(data, shape, name)


def _reshape(data, shape, name):
    if not isinstance(shape, (list, tuple)) or not shape or any((not isinstance(d, int)) or d < 1 for d in shape):
        raise DataError(f"tensor '{name}': shape must be a list of positive integers, got {shape!r}")
    if int(np.prod(shape)) != data.size:
        raise DataError(f"tensor '{name}': shape {list(shape)} needs {int(np.prod(shape))} values, got {data.size}")
    return data.reshape(-1, shape[-1])  # [1, B, L] (batch=False) and [B, L] both become [B, L]


def proto_tensor_array(t):
    name = t.alias_name or t.name
    if len(t.int64_data):
        data = np.asarray(t.int64_data, dtype=np.int64)
    elif len(t.int_data):
        data = np.asarray(t.int_data, dtype=np.int64)
    elif len(t.float_data):
        data = np.asarray(t.float_data, dtype=np.float32)
    else:
        raise DataError(f"tensor '{name}' has no int64_data/int_data")
    return name, _reshape(data, list(t.shape), name)


def maybe_gzip(body, accept_encoding):
    if accept_encoding and "gzip" in accept_encoding.lower() and len(body) > 512:
        return gzip.compress(body), {"Content-Encoding": "gzip"}
    return body, {}

"""Reading what clients send, field by field, with errors that name the field.

Nothing a client sends is evaluated or unpickled: Python-literal values go through
`ast.literal_eval` (literals only) and `byte_data` through `np.load(allow_pickle=False)`.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deploy.service import Limits
import ast
import gzip
import io
import json
import zlib

import numpy as np

from core.errors import DataError, TooLarge

# Paddle Serving pipeline error numbers (ChannelDataErrcode)
OK, NO_SERVICE, UNKNOWN, INPUT_PARAMS_ERROR = 0, 7, 8, 9
MAX_DEPTH = 32  # JSON nesting; no request of any protocol needs more than 4
INT64 = (-(2**63), 2**63 - 1)


def decode_utf8(body: bytes, what: str = "request body") -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} is not valid UTF-8 (byte {e.start})") from None


def gunzip(body: bytes, limit: int, wbits: int = 16 + zlib.MAX_WBITS, what: str = "gzip") -> bytes:
    """Decompress a gzip (or, with wbits=zlib.MAX_WBITS, zlib) body, refusing more than `limit` bytes of output."""
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise DataError(f"the body is compressed as {what}, but it is not {what} data ({e})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise TooLarge(f"decompressed body exceeds the {limit}-byte limit (max_body_bytes)")
    return out


def _check_depth(obj, what):
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            if d > MAX_DEPTH:
                raise DataError(f"{what} is nested more than {MAX_DEPTH} levels deep")
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))


def parse_json(data: bytes | str, what: str = "request body") -> object:
    """bytes or str -> object, refusing invalid UTF-8, invalid JSON and deep nesting."""
    text = decode_utf8(data, what) if isinstance(data, bytes) else data
    try:
        obj = json.loads(text)
    except RecursionError:
        raise DataError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:
        raise DataError(f"{what} is not valid JSON ({e})") from None
    _check_depth(obj, what)
    return obj


def parse_literal(text: str, what: str) -> object:
    """JSON, or a Python literal such as str(dict) with single quotes (never eval)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        try:
            obj = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise DataError(f"{what} is neither JSON nor a Python literal") from None
    _check_depth(obj, what)
    return obj


def json_object(obj: object, what: str = "body") -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{what} must be a JSON object, got {type_name(obj)}")
    return obj


def type_name(v: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        type(None): "null",
        int: "an integer",
        float: "a number",
    }.get(type(v), type(v).__name__)


def int_field(obj: dict, key: str, default: int | None, lo: int, hi: int | None = None, what: str | None = None) -> int:
    """An integer field (booleans, floats and strings refused) within [lo, hi]."""
    what = what or f"'{key}'"
    v = obj.get(key, default)
    if v is None:
        v = default
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise DataError(f"{what} must be an integer {rng}, got {v!r}"[:200])
    return v


def str_field(
    obj: dict, key: str, default: str | None = None, choices: Sequence[str] | None = None, what: str | None = None
) -> str | None:
    what = what or f"'{key}'"
    v = obj.get(key, default)
    if v is None:
        return default
    if not isinstance(v, str):
        raise DataError(f"{what} must be a string, got {type_name(v)}")
    if choices is not None and v not in choices:
        raise DataError(f"{what} must be one of {', '.join(choices)}, got {v[:80]!r}")
    return v


def bool_field(obj: dict, key: str, default: bool = False) -> bool:
    v = obj.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise DataError(f"'{key}' must be true or false, got {type_name(v)}")
    return v


def string_list(v: object, what: str, limits: "Limits") -> list[str]:
    """A non-empty list of strings (each a valid text: Limits.text)."""
    if not isinstance(v, list) or not v:
        raise DataError(f"{what} must be a non-empty list of strings, got {type_name(v)}")
    limits.rows(len(v), f"entries in {what}")
    return [limits.text(t, f"{what}[{i}]") for i, t in enumerate(v)]


def list_literal(values: Sequence[float]) -> str:
    """A list literal both json.loads and Python's eval read (the clients' `eval(ret.value[0])`)."""
    return json.dumps([float(v) for v in values])


def load_npy_bytes(data: bytes, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise DataError(
                f"tensor '{name}': byte_data holds a pickled object array; refused (send numeric arrays)"
            ) from None
        raise DataError(f"tensor '{name}': byte_data is not a .npy array ({e})") from None
    except Exception as e:  # noqa: BLE001 - any malformed payload is a client error
        raise DataError(f"tensor '{name}': byte_data is not a .npy array ({type(e).__name__})") from None


def shape_of(shape: object, name: str, max_values: int) -> tuple[list[int], int]:
    """A tensor shape: 1 to 3 positive integers whose product is at most max_values."""
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= 3:
        raise DataError(f"tensor '{name}': shape must be a list of 1 to 3 positive integers, got {shape!r}"[:200])
    n = 1
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise DataError(f"tensor '{name}': shape must hold positive integers, got {list(shape)!r}"[:200])
        n *= d
        if n > max_values:
            raise TooLarge(
                f"tensor '{name}': shape {list(shape)} holds more than {max_values} values (max_tokens_per_request)"[
                    :200
                ]
            )
    return list(shape), n


def int_array(data: object, name: str, shape: object, max_values: int) -> np.ndarray:
    """Integer values of a tensor, reshaped to [rows, seq]: refuses floats, booleans, strings, nested or
    ragged lists, values outside int64 and a shape that does not match the count."""
    shape, n = shape_of(shape, name, max_values)
    if isinstance(data, np.ndarray):
        arr = data
    else:
        if not isinstance(data, (list, tuple)) or not data:
            raise DataError(f"tensor '{name}': data must be a non-empty list of integers")
        if len(data) > max_values:
            raise TooLarge(
                f"tensor '{name}' holds {len(data)} values; the limit is {max_values} (max_tokens_per_request)"
            )
        if not all(type(x) is int for x in data):
            bad = next(x for x in data if type(x) is not int)
            raise DataError(f"tensor '{name}' must hold integers, got {type_name(bad)} {str(bad)[:40]}")
        if min(data) < INT64[0] or max(data) > INT64[1]:
            raise DataError(f"tensor '{name}': a value is outside the int64 range")
        arr = np.asarray(data, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise DataError(f"tensor '{name}' must hold integers, got {arr.dtype}")
    if arr.size != n:
        raise DataError(f"tensor '{name}': shape {shape} needs {n} values, got {arr.size}")
    return arr.reshape(-1, shape[-1])  # [1, B, L] (batch=False) and [B, L] both become [B, L]


def maybe_gzip(body: bytes, accept_encoding: str | None) -> tuple[bytes, dict]:
    if accept_encoding and "gzip" in accept_encoding.lower() and len(body) > 512:
        return gzip.compress(body), {"Content-Encoding": "gzip"}
    return body, {}

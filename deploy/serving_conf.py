"""Paddle Serving's serving_server_conf.prototxt / serving_client_conf.prototxt (text format).

feed_type / fetch_type follow Paddle Serving: 0 int64, 1 float32, 2 int32, 20 bytes.
"""

import os
import re

from core.errors import ModelLoadError

SERVER_CONF = "serving_server_conf.prototxt"
CLIENT_CONF = "serving_client_conf.prototxt"


def render(feeds: list[dict], fetches: list[dict]) -> str:
    """feeds/fetches: lists of dict(name, alias_name, type, shape)."""
    out = []
    for kind, items in (("feed_var", feeds), ("fetch_var", fetches)):
        for v in items:
            out.append(f"{kind} {{")
            out.append(f'  name: "{v["name"]}"')
            out.append(f'  alias_name: "{v["alias_name"]}"')
            out.append("  is_lod_tensor: false")
            out.append(f"  {'feed' if kind == 'feed_var' else 'fetch'}_type: {v['type']}")
            for d in v["shape"]:
                out.append(f"  shape: {d}")
            out.append("}")
    return "\n".join(out) + "\n"


def parse(path: str) -> dict:
    """-> {"feed": [...], "fetch": [...]} of dict(name, alias_name, type, shape)."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read ({e.strerror})") from None
    result = {"feed": [], "fetch": []}
    for kind, body in re.findall(r"(feed_var|fetch_var)\s*\{(.*?)\}", text, re.S):
        v = {"name": "", "alias_name": "", "type": 0, "shape": []}
        for key, val in re.findall(r"(\w+)\s*:\s*(\"[^\"]*\"|\S+)", body):
            val = val.strip('"')
            if key in ("name", "alias_name"):
                v[key] = val
            elif key in ("feed_type", "fetch_type"):
                v["type"] = int(val)
            elif key == "shape":
                v["shape"].append(int(val))
        v["alias_name"] = v["alias_name"] or v["name"]
        result["feed" if kind == "feed_var" else "fetch"].append(v)
    if not result["feed"] or not result["fetch"]:
        raise ModelLoadError(f"{path}: no feed_var/fetch_var entries")
    return result


def load_aliases(model_dir: str, default_fetch: str = "predict") -> tuple[dict, str]:
    """(feed alias -> real name, fetch alias) for a model directory, with defaults when no conf exists."""
    p = os.path.join(model_dir, SERVER_CONF)
    if not os.path.isfile(p):
        return {"input_ids": "input_ids", "token_type_ids": "token_type_ids"}, default_fetch
    conf = parse(p)
    return {v["alias_name"]: v["name"] for v in conf["feed"]}, conf["fetch"][0]["alias_name"]

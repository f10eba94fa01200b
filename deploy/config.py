"""Server configuration (YAML), modelled on Paddle Serving's config_nlp.yml.

A Paddle Serving config_nlp.yml itself is accepted too: every `op` whose
`local_service_conf.model_config` names a serving_server/ directory becomes a ranker of that name.

    host: 127.0.0.1          # the address every door binds; 0.0.0.0 to serve other machines
    http_port: 8090          # Pipeline HTTP, General model HTTP, /v1/*, /health, /metrics
    rpc_port: 8089           # Pipeline gRPC (PipelineClient.connect(['127.0.0.1:8089'])); 0/absent = off
    worker_num: 4            # gRPC worker threads
    api_key: null            # a key: every request but GET /health needs "Authorization: Bearer KEY"
                             # (gRPC: metadata authorization); also --api_key or $SEARCH_API_KEY
    api_docs: false          # true: serve /docs and /openapi.json
    # limits: every request is bounded before any expensive work (over a limit: 413 / err_no 9)
    max_body_bytes: 2097152  # request body (after gzip decompression too)
    max_pairs_per_request: 256   # pairs / texts / documents / tensor rows / search queries per request
    max_text_chars: 8192     # characters of one text field, checked before tokenizing
    max_tokens_per_request: 32768  # rows x sequence length of a pre-tokenized (General model) request
    request_timeout_s: 30    # deadline of one request; past it: 504 / err_no 1
    max_queue_rows: 4096     # rows waiting per model; more: 503 "overloaded" with Retry-After
    max_connections: 256     # concurrent HTTP connections (more: 503) and concurrent gRPC calls
    read_timeout_s: 30       # time to receive one request body
    shutdown_grace_s: 10     # SIGTERM/SIGINT: in-flight requests get this long to finish
    general_model: ranker    # which model answers /GeneralModelService/inference
    models:
      - name: ranker         # the service name: POST /ranker/prediction
        model_dir: output/pairwise   # an export_model.py output or an export_to_serving.py serving_server/
        kind: ranker         # ranker | encoder
        backend: paddle      # paddle | paddle-bf16 | onnxruntime | onnxruntime-int8
        max_seq_length: 64   # longer (query, title) pairs are truncated, longest text first
        cpu_threads: 2       # CPU threads of this model, in all
        replicas: 1          # engine sessions run side by side, each with cpu_threads // replicas threads
                             # (a request's batches are split across them)
        batching: {max_batch_size: 32, max_wait_ms: 5}
    search:                  # optional: end-to-end search, POST /search and Pipeline service "search"
      encoder: recall        # a kind: encoder model above (embeds the query)
      ranker: ranker         # a kind: ranker model above (re-ranks the recalled titles); null: recall order
      rerank: score_fused    # score_fused (the default): w * minmax(recall similarity) + minmax(ranker score)
                             # over the recalled list; fused: reciprocal-rank fusion of the recall and ranker
                             # orders; ranker: ranker score only
      rrf_k: 10              # the k of the fusion, 1/(k + rank)
      recall_weight: 1.0     # the fusion's weight of the recall side, w/(k + recall rank) (score_fused:
                             # w * minmax(recall similarity)); 0..1
                             # (at weight 1 score_fused beats fused by 0.5-0.8 NDCG@10 points for the
                             # cross-encoders and the pairwise model: benchmarks/results/recall_e2e_ensemble.md;
                             # chosen on training queries: score_fused 0.75 for the 3,000-step ranker, 0.5 for
                             # the pairwise model; fused 0.5 for the 4,000-step ranker, recall_e2e_fusion.md)
      lexical_weight: 0.0    # > 0: hybrid recall, cosine + w * BM25 / best BM25 of the query's dense and BM25
                             # top 100 (the index must be built with build_index.py --lexical); 0..1
                             # (0.005 for the zero-shot encoder, chosen on training queries: recall_hybrid.md)
      milvus_uri: ../work_dirs/milvus.db   # Milvus Lite path (relative to this file) or http://host:19530
      collection: kuake_titles
      recall_num: 50         # titles recalled per query before re-ranking
      top_k: 10              # default number of results
      milvus_port: 0         # > 0: serve the Milvus Lite database on this port (Milvus gRPC), so that
                             # other processes (run_system.py, a rebuild) can use --milvus_uri http://127.0.0.1:PORT
"""

import os

import yaml

from core.errors import PipelineError
from core.inference import BACKENDS

KINDS = ("ranker", "encoder")


class ConfigError(PipelineError):
    pass


def _int(d, key, default, where, lo=0):
    v = d.get(key, default)
    if not isinstance(v, int) or v < lo:
        raise ConfigError(f"{where}: '{key}' must be an integer >= {lo}, got {v!r}")
    return v


def _float(d, key, default, where, lo=0.0):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > lo:
        raise ConfigError(f"{where}: '{key}' must be a number > {lo}, got {v!r}")
    return float(v)


def load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return from_dict(raw, os.path.dirname(os.path.abspath(path)), path)


def _from_paddle_serving(raw):
    """Paddle Serving's own config_nlp.yml: each `op` with `local_service_conf.model_config` is a ranker."""
    models = []
    for name, op in (raw.get("op") or {}).items():
        conf = (op or {}).get("local_service_conf") or {}
        if conf.get("model_config"):
            models.append({"name": name, "model_dir": conf["model_config"], "kind": "ranker"})
    out = {k: v for k, v in raw.items() if k in ("http_port", "rpc_port", "worker_num", "host")}
    out["models"] = models
    return out


def from_dict(raw: dict, base_dir: str = ".", where: str = "config") -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    if "models" not in raw and "op" in raw:
        raw = _from_paddle_serving(raw)
    cfg = {
        "http_port": _int(raw, "http_port", 8090, where),
        "rpc_port": _int(raw, "rpc_port", 0, where),
        "worker_num": _int(raw, "worker_num", 4, where, 1),
        "max_body_bytes": _int(raw, "max_body_bytes", 2 * 1024 * 1024, where, 1),
        "max_pairs_per_request": _int(raw, "max_pairs_per_request", 256, where, 1),
        "max_text_chars": _int(raw, "max_text_chars", 8192, where, 1),
        "max_tokens_per_request": _int(raw, "max_tokens_per_request", 32768, where, 1),
        "request_timeout_s": _float(raw, "request_timeout_s", 30, where),
        "max_queue_rows": _int(raw, "max_queue_rows", 4096, where, 1),
        "max_connections": _int(raw, "max_connections", 256, where, 1),
        "read_timeout_s": _float(raw, "read_timeout_s", 30, where),
        "shutdown_grace_s": _float(raw, "shutdown_grace_s", 10, where),
        "host": str(raw.get("host") or "127.0.0.1"),
        "api_key": raw.get("api_key") or None,
        "api_docs": bool(raw.get("api_docs", False)),
    }
    if cfg["api_key"] is not None and not isinstance(cfg["api_key"], str):
        raise ConfigError(f"{where}: 'api_key' must be a string")
    models = raw.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{where}: 'models' must list at least one model")
    cfg["models"] = []
    names = set()
    for i, m in enumerate(models):
        w = f"{where}: models[{i}]"
        if not isinstance(m, dict) or not m.get("name") or not m.get("model_dir"):
            raise ConfigError(f"{w}: needs 'name' and 'model_dir'")
        if m["name"] in names:
            raise ConfigError(f"{w}: duplicate name '{m['name']}'")
        names.add(m["name"])
        kind = m.get("kind", "ranker")
        if kind not in KINDS:
            raise ConfigError(f"{w}: kind must be one of {KINDS}, got {kind!r}")
        backend = m.get("backend", "paddle")
        if backend not in BACKENDS:
            raise ConfigError(f"{w}: backend must be one of {BACKENDS}, got {backend!r}")
        batching = m.get("batching") or {}
        model_dir = m["model_dir"]
        if not os.path.isabs(model_dir):
            model_dir = os.path.normpath(os.path.join(base_dir, model_dir))
        cfg["models"].append(
            {
                "name": str(m["name"]),
                "model_dir": model_dir,
                "kind": kind,
                "backend": backend,
                "max_seq_length": _int(m, "max_seq_length", 128, w, 8),
                "cpu_threads": _int(m, "cpu_threads", 2, w, 1),
                "replicas": _int(m, "replicas", 1, w, 1),
                "max_batch_size": _int(batching, "max_batch_size", 32, w, 1),
                "max_wait_ms": _int(batching, "max_wait_ms", 5, w, 0),
            }
        )
    cfg["search"] = _search(raw.get("search"), cfg["models"], base_dir, where)
    rankers = [m["name"] for m in cfg["models"] if m["kind"] == "ranker"]
    cfg["general_model"] = raw.get("general_model") or (rankers[0] if rankers else cfg["models"][0]["name"])
    if cfg["general_model"] not in names:
        raise ConfigError(f"{where}: general_model '{cfg['general_model']}' is not one of the models")
    return cfg


def _search(raw, models, base_dir, where):
    if raw is None:
        return None
    w = f"{where}: search"
    if not isinstance(raw, dict):
        raise ConfigError(f"{w}: expected a mapping")
    kinds = {m["name"]: m["kind"] for m in models}
    enc = raw.get("encoder")
    if kinds.get(enc) != "encoder":
        raise ConfigError(f"{w}: 'encoder' must name a model of kind encoder, got {enc!r}")
    ranker = raw.get("ranker")
    if ranker is not None and kinds.get(ranker) != "ranker":
        raise ConfigError(f"{w}: 'ranker' must name a model of kind ranker (or be null), got {ranker!r}")
    uri = str(raw.get("milvus_uri") or "milvus.db")
    if "://" not in uri and not os.path.isabs(uri):
        uri = os.path.normpath(os.path.join(base_dir, uri))
    return {
        "name": str(raw.get("name", "search")),
        "encoder": enc,
        "ranker": ranker,
        "milvus_uri": uri,
        "milvus_token": raw.get("milvus_token"),
        "collection": str(raw.get("collection", "kuake_titles")),
        "recall_num": _int(raw, "recall_num", 50, w, 1),
        "top_k": _int(raw, "top_k", 10, w, 1),
        "milvus_port": _int(raw, "milvus_port", 0, w),
        "rerank": _rerank_mode(raw, w),
        "rrf_k": _int(raw, "rrf_k", 10, w, 0),
        "recall_weight": _weight(raw, "recall_weight", w),
        "lexical_weight": _weight(raw, "lexical_weight", w, 0.0),
    }


def _weight(raw, key, where, default=1.0):
    from core.errors import DataError
    from core.search import check_weight

    v = raw.get(key, default)
    try:
        return check_weight(v, key)
    except DataError:
        raise ConfigError(f"{where}: '{key}' must be a number from 0 to 1, got {v!r}") from None


def _rerank_mode(raw, where):
    from core.search import DEFAULT_RERANK, RERANK_MODES

    mode = raw.get("rerank", DEFAULT_RERANK)
    if mode not in RERANK_MODES:
        raise ConfigError(f"{where}: 'rerank' must be one of {', '.join(RERANK_MODES)}, got {mode!r}")
    return mode

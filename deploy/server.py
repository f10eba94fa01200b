"""One server for exported rankers that answers the protocols Paddle Serving clients speak.

    python -m deploy.server --config deploy/config.yml        (or: bash scripts/start_server.sh)

- Pipeline HTTP   POST /{name}/prediction      {"key": [...], "value": [...]} -> {"err_no", "key", "value"}
- Pipeline gRPC   PipelineService.inference    on rpc_port (PipelineClient.connect(['127.0.0.1:8089']))
- General model   POST /GeneralModelService/inference   JSON or application/proto, gzip accepted
- Rerank          POST /v1/rerank              {"query", "documents", "top_n"} -> {"results": [{"index", "relevance_score"}]}
- Embeddings      POST /v1/embeddings          OpenAI shape, when a recall encoder (kind: encoder) is served
- Search          POST /search                 {"query", "top_k", "recall_num", "rerank"} -> recall from Milvus,
                  re-rank (rerank: true = the configured mode, "fused", "ranker", or false), ranked results;
                  also the Pipeline service "search" (HTTP /search/prediction and gRPC), value = query texts
- GET /health, GET /metrics (Prometheus)
Concurrent requests to a model are batched together (see deploy/batching.py).
"""
import argparse
import functools
import json
import logging
import os
import sys
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from core.errors import DataError, PipelineError  # noqa: E402
from core.index import IndexError_  # noqa: E402
from deploy import protocols as P  # noqa: E402
from deploy.batching import Batcher  # noqa: E402
from deploy.config import ConfigError, load  # noqa: E402
from core.engine import EncoderEngine, RankerEngine  # noqa: E402
from deploy.serving_conf import load_aliases  # noqa: E402

log = logging.getLogger("deploy.server")


class TooLarge(Exception):
    pass


class ModelService:
    def __init__(self, cfg, metrics):
        self.cfg = cfg
        self.name = cfg["name"]
        self.kind = cfg["kind"]
        cls = RankerEngine if self.kind == "ranker" else EncoderEngine
        self.engine = cls(cfg["model_dir"], backend=cfg["backend"], max_seq_length=cfg["max_seq_length"],
                          cpu_threads=cfg["cpu_threads"], batch_size=cfg["max_batch_size"])
        self.feed_alias, self.fetch_alias = load_aliases(
            cfg["model_dir"], "predict" if self.kind == "ranker" else "output_embedding")
        self.metrics = metrics
        self.batcher = Batcher(self.engine, cfg["max_batch_size"], cfg["max_wait_ms"],
                               on_batch=lambda rows, reqs: metrics.batch(self.name, rows))

    def score(self, pairs):
        if self.kind != "ranker":
            raise DataError(f"model '{self.name}' is a {self.kind}, not a ranker")
        encoded = self.engine.encode(pairs)
        self.metrics.pairs(self.name, len(pairs))
        return self.batcher.score(encoded)

    def embed(self, texts, input_type="query", encoded=None):
        if self.kind != "encoder":
            raise DataError(f"model '{self.name}' is a {self.kind}, not an encoder")
        if encoded is None:
            encoded = self.engine.encode(texts, input_type)
        self.metrics.pairs(self.name, len(texts))
        return np.asarray(self.batcher.score(encoded)).reshape(len(texts), -1)

    def run_feeds(self, named):
        feeds = {}
        for alias, arr in named:
            real = self.feed_alias.get(alias, alias if alias in self.feed_alias.values() else None)
            if real is None:
                raise DataError(f"unknown feed name '{alias}' (the model takes {', '.join(self.feed_alias)})")
            feeds[real] = arr
        out = self.engine.run_feeds(feeds)
        self.metrics.pairs(self.name, len(out))
        return out


class Metrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("search_requests", "requests by endpoint and outcome", ["endpoint", "outcome"],
                                registry=self.registry)
        self.latency = Histogram("search_request_seconds", "request latency", ["endpoint"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.pair_count = Counter("search_pairs", "pairs scored", ["model"], registry=self.registry)
        self.batch_rows = Histogram("search_batch_rows", "rows scored per batching round", ["model"], registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def pairs(self, model, n):
        self.pair_count.labels(model).inc(n)

    def batch(self, model, rows):
        self.batch_rows.labels(model).observe(rows)

    def observe(self, endpoint, outcome, seconds):
        self.requests.labels(endpoint, outcome).inc()
        self.latency.labels(endpoint).observe(seconds)


class Server:
    """The protocol logic, independent of the HTTP/gRPC plumbing."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.metrics = Metrics()
        self.services = {m["name"]: ModelService(m, self.metrics) for m in cfg["models"]}
        self.default = next(iter(self.services))
        self.general = self.services[cfg["general_model"]]
        self.searcher = None
        self.milvus_server = None
        if cfg.get("search"):
            self._init_search(cfg["search"])

    def _init_search(self, sc):
        from core.index import MilvusIndex, is_lite
        from core.search import SearchPipeline

        uri = sc["milvus_uri"]
        if is_lite(uri) and sc["milvus_port"]:
            # serve the Lite database over Milvus gRPC: this process and others then share it
            from milvus_lite.adapter.grpc.server import start_server_in_thread

            os.makedirs(os.path.dirname(uri), exist_ok=True)
            try:
                self.milvus_server, self.milvus_db, port = start_server_in_thread(uri, host="127.0.0.1",
                                                                                  port=sc["milvus_port"])
            except Exception as e:  # noqa: BLE001
                raise ConfigError(f"search: cannot serve the Milvus Lite database {uri} on port "
                                  f"{sc['milvus_port']}: {e}") from None
            uri = f"http://127.0.0.1:{port}"
        index = MilvusIndex(uri, sc["collection"], token=sc.get("milvus_token"))
        ranker = self.services[sc["ranker"]] if sc["ranker"] else None
        self.searcher = SearchPipeline(self.services[sc["encoder"]], index, ranker, recall_num=sc["recall_num"],
                                       rerank=sc["rerank"], rrf_k=sc["rrf_k"])
        if not index.exists():
            log.warning("search: no index '%s' yet at %s; /search answers 503 until it is built", sc["collection"], uri)

    def service(self, name):
        svc = self.services.get(name or self.default)
        if svc is None:
            raise LookupError(f"no service named '{name}' (serving: {', '.join(self.services)})")
        return svc

    # ------------------------------------------------------------- pipeline
    def pipeline(self, name, key, value, tensors=()):
        """-> reply dict of the Pipeline protocol (err_no != 0 on errors)."""
        if self.searcher is not None and name == self.cfg["search"]["name"] and name not in self.services:
            return self._pipeline_search(key, value)
        try:
            svc = self.service(name)
        except LookupError as e:
            return P.pipeline_reply([], [], P.NO_SERVICE, str(e))
        try:
            if tensors:
                return self._pipeline_tensors(svc, tensors)
            if not isinstance(key, list) or not isinstance(value, list):
                raise DataError("'key' and 'value' must be lists")
            if len(key) != len(value):
                raise DataError(f"'key' has {len(key)} entries but 'value' has {len(value)}")
            if not value:
                raise DataError("no pairs: 'value' is empty")
            if len(value) > self.cfg["max_pairs_per_request"]:
                raise DataError(f"{len(value)} pairs in one request; the limit is {self.cfg['max_pairs_per_request']}")
            if svc.kind == "encoder":
                emb = svc.embed([P.text_from_value(v, i) for i, v in enumerate(value)])
                return P.pipeline_reply([svc.fetch_alias], [json.dumps(np.round(emb, 7).tolist())])
            pairs = [P.pair_from_value(v, i) for i, v in enumerate(value)]
            probs = svc.score(pairs)
            return P.pipeline_reply([svc.fetch_alias], [P.list_literal(probs)])
        except PipelineError as e:
            return P.pipeline_reply([], [], P.INPUT_PARAMS_ERROR, str(e))

    def _pipeline_search(self, key, value):
        """value[i]: a query text, or JSON {"query", "top_k", "rerank"}; reply value[i]: JSON list of results."""
        try:
            if not isinstance(key, list) or not isinstance(value, list) or len(key) != len(value) or not value:
                raise DataError("'key' and 'value' must be non-empty lists of the same length")
            out = []
            for i, v in enumerate(value):
                top_k, rerank = self.cfg["search"]["top_k"], True
                try:
                    obj = json.loads(v)
                except ValueError:
                    obj = None
                if isinstance(obj, dict):
                    v, top_k, rerank = obj.get("query"), obj.get("top_k", top_k), obj.get("rerank", True)
                out.append(json.dumps(self.searcher.search(P.text_from_value(v, i), top_k, rerank=rerank),
                                      ensure_ascii=False))
            return P.pipeline_reply(list(key), out)
        except PipelineError as e:
            return P.pipeline_reply([], [], P.INPUT_PARAMS_ERROR, str(e))

    def search(self, obj):
        if self.searcher is None:
            raise LookupError("search is not configured on this server (add a 'search' block to its config)")
        if not isinstance(obj, dict):
            raise DataError("body must be a JSON object with 'query' and optional 'top_k'")
        top_k = obj.get("top_k", self.cfg["search"]["top_k"])
        results = self.searcher.search(obj.get("query"), top_k, recall_num=obj.get("recall_num"),
                                       rerank=obj.get("rerank", True))
        return {"query": obj["query"], "results": results, "timings_ms": {k: round(v, 2) for k, v in
                                                                          self.searcher.last_timings.items()}}

    def _pipeline_tensors(self, svc, tensors):
        """Tensor-format requests: str_data values (pairs) or numeric input_ids/token_type_ids."""
        values, named = [], []
        for t in tensors:
            name = t.name
            if len(t.str_data):
                values.extend(t.str_data)
            elif t.byte_data:
                named.append((name, P.load_npy_bytes(t.byte_data, name)))
            elif len(t.int64_data) or len(t.int_data):
                data = np.asarray(t.int64_data if len(t.int64_data) else t.int_data, dtype=np.int64)
                named.append((name, P._reshape(data, list(t.shape), name)))
            else:
                raise DataError(f"tensor '{name}' carries no data this model can use")
        if values:
            return self.pipeline(svc.name, [str(i) for i in range(len(values))], values)
        arrays = []
        for name, arr in named:
            if arr.dtype.kind not in "iu":
                raise DataError(f"tensor '{name}' must hold integers, got {arr.dtype}")
            arrays.append((name, arr.reshape(-1, arr.shape[-1]) if arr.ndim >= 2 else arr))
        probs = svc.run_feeds(arrays)
        return P.pipeline_reply([svc.fetch_alias], [P.list_literal(probs)])

    # -------------------------------------------------------- general model
    def general_json(self, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("tensor"), list) or not obj["tensor"]:
            raise DataError("body must be a JSON object with a non-empty 'tensor' list")
        named = []
        for i, t in enumerate(obj["tensor"]):
            if not isinstance(t, dict):
                raise DataError(f"tensor[{i}] must be an object")
            name = t.get("alias_name") or t.get("name")
            if not name:
                raise DataError(f"tensor[{i}] has no name")
            named.append((name, P.tensor_array(t, name)))
        fetch = obj.get("fetch_var_names") or []
        return self._general(named, fetch), int(obj.get("log_id") or 0)

    def general_proto(self, body):
        from google.protobuf.message import DecodeError

        from deploy.proto import general_model_service_pb2 as pb

        req = pb.Request()
        try:
            req.ParseFromString(body)
        except DecodeError as e:
            raise DataError(f"body is not a valid general_model Request protobuf ({e})") from None
        if not len(req.tensor):
            raise DataError("request has no tensor")
        named = [P.proto_tensor_array(t) for t in req.tensor]
        return self._general(named, list(req.fetch_var_names)), int(req.log_id)

    def _general(self, named, fetch):
        svc = self.general
        allowed = {svc.fetch_alias, "probability"}
        unknown = [f for f in fetch if f not in allowed]
        if unknown:
            raise DataError(f"unknown fetch_var_names {unknown} (this model fetches '{svc.fetch_alias}')")
        return svc.fetch_alias, svc.run_feeds(named)

    # --------------------------------------------------------------- rerank
    def first(self, kind):
        svc = next((s for s in self.services.values() if s.kind == kind), None)
        if svc is None:
            raise LookupError(f"no {kind} model is served (serving: {', '.join(self.services)})")
        return svc

    def embeddings(self, obj):
        if not isinstance(obj, dict):
            raise DataError("body must be a JSON object")
        svc = self.service(obj["model"]) if obj.get("model") in self.services else self.first("encoder")
        texts = obj.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts:
            raise DataError("'input' must be a string or a non-empty list of strings")
        if len(texts) > self.cfg["max_pairs_per_request"]:
            raise DataError(f"{len(texts)} inputs in one request; the limit is {self.cfg['max_pairs_per_request']}")
        fmt = obj.get("encoding_format", "float")
        if fmt != "float":
            raise DataError(f"encoding_format {fmt!r} is not supported (use 'float')")
        if svc.kind != "encoder":
            raise DataError(f"model '{svc.name}' is a {svc.kind}, not an encoder")
        encoded = svc.engine.encode(texts, obj.get("input_type", "query"))
        emb = svc.embed(texts, encoded=encoded)
        tokens = sum(len(e[0]) for e in encoded)
        return {"object": "list", "model": svc.name,
                "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]} for i, v in enumerate(emb)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def rerank(self, obj):
        if not isinstance(obj, dict):
            raise DataError("body must be a JSON object")
        svc = self.service(obj["model"]) if obj.get("model") in self.services else self.first("ranker")
        query = obj.get("query")
        from core.data import check_text

        check_text(query, "query")
        docs = obj.get("documents")
        if not isinstance(docs, list) or not docs:
            raise DataError("'documents' must be a non-empty list")
        if len(docs) > self.cfg["max_pairs_per_request"]:
            raise DataError(f"{len(docs)} documents in one request; the limit is {self.cfg['max_pairs_per_request']}")
        texts = []
        for i, d in enumerate(docs):
            text = d.get("text") if isinstance(d, dict) else d
            texts.append(check_text(text, f"documents[{i}]"))
        top_n = obj.get("top_n", len(texts))
        if top_n is None:
            top_n = len(texts)
        if not isinstance(top_n, int) or top_n < 1:
            raise DataError(f"'top_n' must be a positive integer, got {top_n!r}")
        scores = svc.score([(query, t) for t in texts])
        order = np.argsort(-scores, kind="mergesort")[:top_n]
        results = []
        for i in order:
            r = {"index": int(i), "relevance_score": float(scores[i])}
            if obj.get("return_documents"):
                r["document"] = {"text": texts[i]}
            results.append(r)
        return {"model": svc.name, "results": results}


def create_app(server):
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="Paddle semantic search server", docs_url=None, redoc_url=None)
    limit = server.cfg["max_body_bytes"]

    async def read_body(request):
        cl = request.headers.get("content-length")
        if cl and cl.isdigit() and int(cl) > limit:
            raise TooLarge(f"body of {cl} bytes exceeds the {limit}-byte limit")
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise TooLarge(f"body exceeds the {limit}-byte limit")
            chunks.append(chunk)
        body = b"".join(chunks)
        if "gzip" in request.headers.get("content-encoding", "").lower():
            body = P.gunzip(body, limit)
        return body

    def timed(endpoint):
        def deco(fn):
            @functools.wraps(fn)
            async def wrapper(*a, **k):
                t0 = time.perf_counter()
                resp = await fn(*a, **k)
                outcome = "ok" if resp.status_code < 400 and not getattr(resp, "pipeline_error", False) else "error"
                server.metrics.observe(endpoint, outcome, time.perf_counter() - t0)
                return resp
            return wrapper
        return deco

    @app.get("/health")
    async def health():
        out = {"status": "ok", "models": {n: {"kind": s.cfg["kind"], "backend": s.cfg["backend"],
                                             "model_dir": s.cfg["model_dir"]} for n, s in server.services.items()}}
        if server.searcher is not None:
            try:
                info = await run_in_threadpool(server.searcher.index.info)
                out["search"] = {"collection": info["collection"], "rows": info["rows"], "dim": info["dim"]}
            except PipelineError as e:
                out["search"] = {"error": str(e)}
        return out

    @app.get("/metrics")
    async def metrics():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/GeneralModelService/inference")
    @timed("general")
    async def general(request: Request):
        is_proto = "application/proto" in request.headers.get("content-type", "")
        try:
            body = await read_body(request)
            if is_proto:
                (fetch, probs), log_id = await run_in_threadpool(server.general_proto, body)
            else:
                obj = P.parse_json(P.decode_utf8(body))
                (fetch, probs), log_id = await run_in_threadpool(server.general_json, obj)
        except (TooLarge, PipelineError) as e:
            status = 413 if isinstance(e, TooLarge) else 400
            if is_proto:
                from deploy.proto import general_model_service_pb2 as pb

                r = pb.Response(err_no=P.INPUT_PARAMS_ERROR, err_msg=str(e))
                return Response(r.SerializeToString(), status_code=status, media_type="application/proto")
            return JSONResponse({"err_no": P.INPUT_PARAMS_ERROR, "err_msg": str(e)}, status_code=status)
        probs = np.asarray(probs, dtype=np.float32)
        shape = list(probs.shape)
        probs = [float(v) for v in probs.reshape(-1)]
        if is_proto:
            from deploy.proto import general_model_service_pb2 as pb

            r = pb.Response(log_id=log_id, err_no=0)
            out = r.outputs.add(engine_name="general_infer_0")
            out.tensor.add(float_data=probs, elem_type=1, shape=shape, name=fetch, alias_name=fetch)
            data, headers = P.maybe_gzip(r.SerializeToString(), request.headers.get("accept-encoding"))
            return Response(data, media_type="application/proto", headers=headers)
        reply = {"outputs": [{"tensor": [{"float_data": probs, "elem_type": 1, "shape": shape, "name": fetch,
                                          "alias_name": fetch}], "engine_name": "general_infer_0"}],
                 "log_id": log_id, "err_no": 0, "err_msg": ""}
        data, headers = P.maybe_gzip(json.dumps(reply).encode(), request.headers.get("accept-encoding"))
        return Response(data, media_type="application/json", headers=headers)

    async def json_api(request, handler):
        """/v1/* endpoints: JSON in, JSON out; 400/404/413 with {"error": ...} on bad requests."""
        try:
            obj = P.parse_json(P.decode_utf8(await read_body(request)))
            return JSONResponse(await run_in_threadpool(handler, obj))
        except TooLarge as e:
            return JSONResponse({"error": str(e)}, status_code=413)
        except IndexError_ as e:  # no index yet, or Milvus unreachable
            return JSONResponse({"error": str(e)}, status_code=503)
        except PipelineError as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except LookupError as e:
            return JSONResponse({"error": str(e)}, status_code=404)

    @app.post("/v1/rerank")
    @timed("rerank")
    async def rerank(request: Request):
        return await json_api(request, server.rerank)

    @app.post("/v1/embeddings")
    @timed("embeddings")
    async def embeddings(request: Request):
        return await json_api(request, server.embeddings)

    @app.post("/search")
    @timed("search")
    async def search(request: Request):
        return await json_api(request, server.search)

    @app.post("/{name}/prediction")
    @timed("pipeline_http")
    async def pipeline_http(name: str, request: Request):
        try:
            obj = P.parse_json(P.decode_utf8(await read_body(request)))
            if not isinstance(obj, dict):
                raise DataError("body must be a JSON object with 'key' and 'value'")
        except TooLarge as e:
            return JSONResponse(P.pipeline_reply([], [], P.INPUT_PARAMS_ERROR, str(e)), status_code=413)
        except PipelineError as e:
            return JSONResponse(P.pipeline_reply([], [], P.INPUT_PARAMS_ERROR, str(e)), status_code=400)
        reply = await run_in_threadpool(server.pipeline, name, obj.get("key"), obj.get("value"))
        status = 404 if reply["err_no"] == P.NO_SERVICE else 200
        resp = JSONResponse(reply, status_code=status)
        resp.pipeline_error = reply["err_no"] != 0
        return resp

    return app


def start_grpc(server, port, workers):
    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    class Servicer(pb_grpc.PipelineServiceServicer):
        def inference(self, request, context):
            t0 = time.perf_counter()
            try:
                reply = server.pipeline(request.name, list(request.key), list(request.value), list(request.tensors))
            except PipelineError as e:
                reply = P.pipeline_reply([], [], P.INPUT_PARAMS_ERROR, str(e))
            except Exception as e:  # noqa: BLE001 - report, keep serving
                log.exception("pipeline rpc failed")
                reply = P.pipeline_reply([], [], P.UNKNOWN, f"internal error: {type(e).__name__}")
            server.metrics.observe("pipeline_rpc", "ok" if reply["err_no"] == 0 else "error", time.perf_counter() - t0)
            return pb.Response(err_no=reply["err_no"], err_msg=reply["err_msg"], key=reply["key"],
                               value=reply["value"])

    limit = server.cfg["max_body_bytes"]
    g = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                    options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
    pb_grpc.add_PipelineServiceServicer_to_server(Servicer(), g)
    g.add_insecure_port(f"{server.cfg['host']}:{port}")
    g.start()
    return g


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (see deploy/config.py)")
    p.add_argument("--http_port", type=int, default=None, help="override http_port")
    p.add_argument("--rpc_port", type=int, default=None, help="override rpc_port (0: no gRPC)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load(args.config)
        if args.http_port is not None:
            cfg["http_port"] = args.http_port
        if args.rpc_port is not None:
            cfg["rpc_port"] = args.rpc_port
        server = Server(cfg)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import uvicorn

    grpc_server = start_grpc(server, cfg["rpc_port"], cfg["worker_num"]) if cfg["rpc_port"] else None
    names = ", ".join(f"{n} ({s.cfg['backend']})" for n, s in server.services.items())
    print(f"serving {names}: http on :{cfg['http_port']}"
          + (f", pipeline rpc on :{cfg['rpc_port']}" if grpc_server else ""), flush=True)
    config = uvicorn.Config(create_app(server), host=cfg["host"], port=cfg["http_port"], log_level="warning",
                            limit_concurrency=None, timeout_keep_alive=30)
    uvicorn.Server(config).run()
    if grpc_server is not None:
        grpc_server.stop(grace=2)
    if server.milvus_server is not None:
        server.milvus_server.stop(grace=2)
        server.milvus_db.close()


if __name__ == "__main__":
    main()

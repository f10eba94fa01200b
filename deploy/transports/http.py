"""The HTTP door (FastAPI on uvicorn): every route goes through `serve`, the one place where a
request is authenticated, its body read within the limits, its work run in a worker thread
under a deadline, and any error turned into the protocol's error reply with its status.

    GET  /health                          open (no API key): models, backends, index size
    GET  /metrics                         Prometheus
    POST /{service}/prediction            Pipeline HTTP            -> deploy/protocols/pipeline.py
    POST /GeneralModelService/inference   General model JSON/proto -> deploy/protocols/general.py
    POST /v1/rerank, /v1/embeddings       RAG endpoints            -> deploy/protocols/v1.py
    POST /search                          end-to-end search        -> deploy/protocols/search.py
"""

import asyncio
import hmac
import json
import logging
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from core.errors import DataError, InternalError, NotFound, PipelineError, ReadTimeout, TooLarge, Unauthorized
from deploy.protocols import pipeline as pipeline_proto
from deploy.protocols import v1 as v1_proto
from deploy.protocols import wire
from deploy.service import Ctx

log = logging.getLogger("deploy.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def check_api_key(expected: str | None, header: str | None) -> None:
    """`Authorization: Bearer KEY` (also the gRPC metadata value) against the configured key."""
    if not expected:
        return
    given = header[7:].strip() if header and header[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        raise Unauthorized("missing or wrong API key: send the header 'Authorization: Bearer <api_key>'")


def json_response(obj: object, status: int = 200, headers: dict | None = None) -> Response:
    try:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed in a message: \u-escape it (still valid JSON)
        data = json.dumps(obj).encode("ascii")
    return Response(data, status_code=status, media_type="application/json", headers=headers)


def create_app(server: object) -> FastAPI:
    cfg = server.cfg
    limit = cfg["max_body_bytes"]
    docs = cfg["api_docs"]
    app = FastAPI(
        title="Paddle semantic search server",
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )

    async def read_body(request):
        cl = request.headers.get("content-length")
        if cl is not None:
            if not cl.isdigit():
                raise DataError(f"Content-Length must be a number of bytes, got {cl[:40]!r}")
            if int(cl) > limit:
                raise TooLarge(f"body of {cl} bytes exceeds the {limit}-byte limit (max_body_bytes)")

        async def collect():
            chunks, n = [], 0
            async for chunk in request.stream():
                n += len(chunk)
                if n > limit:
                    raise TooLarge(f"body exceeds the {limit}-byte limit (max_body_bytes)")
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            body = await asyncio.wait_for(collect(), cfg["read_timeout_s"])
        except TimeoutError:
            raise ReadTimeout(
                f"the request body did not arrive within {cfg['read_timeout_s']:g} s (read_timeout_s)"
            ) from None
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding == "gzip":
            body = wire.gunzip(body, limit)
        elif encoding not in ("", "identity"):
            raise DataError(f"Content-Encoding {encoding[:40]!r} is not supported (gzip or none)")
        return body

    async def serve(request, endpoint, work, on_error):
        """work(body, ctx) -> Response, run in a worker thread; on_error(err) -> Response."""
        rid = request.headers.get("x-request-id", "")
        ctx = Ctx(cfg["request_timeout_s"], rid if _REQUEST_ID.match(rid) else None)
        t0 = time.perf_counter()
        err = None
        with server.metrics.in_flight(endpoint):
            try:
                check_api_key(server.api_key, request.headers.get("authorization"))
                body = await read_body(request)
                resp = await run_in_threadpool(work, body, ctx)
            except PipelineError as e:
                err = e
            except Exception:  # noqa: BLE001 - a bug: log it once with the request id, answer 500, keep serving
                log.exception("request %s to %s failed", ctx.id, endpoint)
                err = InternalError(f"internal error (request id {ctx.id})")
        if err is not None:
            resp = on_error(err)
            if getattr(err, "retry_after", None):
                resp.headers["Retry-After"] = str(err.retry_after)
        resp.headers["X-Request-Id"] = ctx.id
        server.metrics.observe(endpoint, "ok" if err is None else err.kind, resp.status_code, time.perf_counter() - t0)
        return resp

    def v1_error(err):
        return json_response(v1_proto.error_body(err), err.status)

    def pipeline_error(err):
        return json_response(pipeline_proto.error_reply(err), err.status)

    @app.get("/health")
    async def health():
        out = {"status": "ok", "models": {n: s.info() for n, s in server.services.items()}}
        if server.search is not None:
            try:
                # bounded inside too: a Milvus that hangs must not keep a worker thread
                info = await asyncio.wait_for(run_in_threadpool(server.search.index.info, 5), 6)
                out["search"] = {"collection": info["collection"], "rows": info["rows"], "dim": info["dim"]}
            except PipelineError as e:
                out["search"] = {"error": str(e)}
            except Exception as e:  # noqa: BLE001 - health must answer; the index state is part of it
                out["search"] = {"error": f"index unreachable ({type(e).__name__})"}
        return out

    @app.get("/metrics")
    async def metrics(request: Request):
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        try:
            check_api_key(server.api_key, request.headers.get("authorization"))
        except Unauthorized as e:
            return v1_error(e)
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/GeneralModelService/inference")
    async def general(request: Request):
        is_proto = "application/proto" in request.headers.get("content-type", "")
        accept = request.headers.get("accept-encoding")

        def work(body, ctx):
            status, data, media, headers = server.general.handle(body, is_proto, accept, ctx)
            return Response(data, status_code=status, media_type=media, headers=headers)

        def on_error(err):
            data, media = server.general.error(err, is_proto)
            return Response(data, status_code=err.status, media_type=media)

        return await serve(request, "general", work, on_error)

    @app.post("/v1/rerank")
    async def rerank(request: Request):
        return await serve(request, "rerank", lambda body, ctx: json_response(server.v1.rerank(body, ctx)), v1_error)

    @app.post("/v1/embeddings")
    async def embeddings(request: Request):
        return await serve(
            request, "embeddings", lambda body, ctx: json_response(server.v1.embeddings(body, ctx)), v1_error
        )

    @app.post("/search")
    async def search(request: Request):
        def work(body, ctx):
            if server.search is None:
                raise NotFound("search is not configured on this server (add a 'search' block to its config)")
            return json_response(server.search.http(body, ctx))

        return await serve(request, "search", work, v1_error)

    @app.post("/{name}/prediction")
    async def pipeline_http(name: str, request: Request):
        return await serve(
            request,
            "pipeline_http",
            lambda body, ctx: json_response(server.pipeline.http(name, body, ctx)),
            pipeline_error,
        )

    return app

"""The gRPC door: Paddle Serving's `PipelineService.inference` (PipelineClient.connect(['host:port'])).

Every call goes through `inference`, the one place where the API key (metadata `authorization:
Bearer KEY`) is checked, the deadline set (the server's request_timeout_s, or the client's
deadline if sooner) and errors turned into `err_no` replies; the work is the Pipeline
protocol's (deploy/protocols/pipeline.py).
"""

import logging
import time
from concurrent import futures

import grpc

from core.errors import InternalError, PipelineError
from deploy.proto import pipeline_service_pb2 as pb
from deploy.proto import pipeline_service_pb2_grpc as pb_grpc
from deploy.protocols.pipeline import error_reply
from deploy.service import Ctx
from deploy.transports.http import check_api_key

log = logging.getLogger("deploy.grpc")


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(self, server):
        self.server = server

    def inference(self, request, context):
        cfg = self.server.cfg
        remaining = context.time_remaining()
        timeout = cfg["request_timeout_s"] if remaining is None else min(cfg["request_timeout_s"], remaining)
        ctx = Ctx(timeout)
        t0 = time.perf_counter()
        err = None
        with self.server.metrics.in_flight("pipeline_rpc"):
            try:
                meta = dict(context.invocation_metadata() or ())
                check_api_key(self.server.api_key, meta.get("authorization"))
                reply = self.server.pipeline.rpc(request, ctx)
            except PipelineError as e:
                err = e
            except Exception:  # noqa: BLE001 - a bug: log it once with the request id, answer err_no 8, keep serving
                log.exception("pipeline rpc %s failed", ctx.id)
                err = InternalError(f"internal error (request id {ctx.id})")
        if err is not None:
            reply = error_reply(err)
        self.server.metrics.observe(
            "pipeline_rpc",
            "ok" if err is None else err.kind,
            200 if err is None else err.status,
            time.perf_counter() - t0,
        )
        return pb.Response(err_no=reply["err_no"], err_msg=reply["err_msg"], key=reply["key"], value=reply["value"])


def start(server: object, host: str, port: int) -> grpc.Server:
    cfg = server.cfg
    limit = cfg["max_body_bytes"]
    g = grpc.server(
        futures.ThreadPoolExecutor(max_workers=cfg["worker_num"], thread_name_prefix="grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        maximum_concurrent_rpcs=cfg["max_connections"],
    )
    pb_grpc.add_PipelineServiceServicer_to_server(PipelineServicer(server), g)
    g.add_insecure_port(f"{host}:{port}")
    g.start()
    return g

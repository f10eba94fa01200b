"""The C++ Serving RPC door: brpc's baidu_std protocol for `GeneralModelService.inference`, on the HTTP port.

Paddle Serving's brpc `Client` (`paddle_serving_client.Client`, the seed's `rpc_client.py`) and the
General model HTTP door share one port, as C++ Serving does: `DoorProtocol` reads the first bytes
of each connection and hands it either to uvicorn's HTTP protocol or to `BrpcProtocol`.

A baidu_std frame: 12 bytes `PRPC` + body size + meta size (big-endian uint32), then an `RpcMeta`
(brpc's baidu_rpc_meta.proto: request {service_name, method_name, log_id, timeout_ms},
compress_type, correlation_id, attachment_size, authentication_data) and the payload, here a
general_model `Request`. The reply echoes the correlation id and carries errors in
`RpcMeta.response {error_code, error_text}` (the brpc client ignores `Response.err_no`). Many
frames may come on one connection and are answered as they finish; each request is batched with
everything else through the model service. A malformed or oversized frame closes the connection;
an unknown service or method, or a bad request, gets a brpc error reply.
"""

import asyncio
import logging
import struct
import time
import zlib

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from core.errors import DataError, InternalError, PipelineError, Unauthorized
from deploy.protocols import wire
from deploy.service import Ctx

log = logging.getLogger("deploy.brpc")

MAGIC = b"PRPC"
SERVICE = "baidu.paddle_serving.predictor.general_model.GeneralModelService"
METHOD = "inference"
MAX_META = 64 * 1024
# brpc error codes (brpc/errno.proto)
ENOSERVICE, ENOMETHOD, EREQUEST, ERPCTIMEDOUT, EINTERNAL, ELIMIT, EAUTH = 1001, 1002, 1003, 1008, 2001, 2004, 1004
ERROR_CODES = {
    "bad_input": EREQUEST,
    "too_large": EREQUEST,
    "read_timeout": EREQUEST,
    "unauthorized": EAUTH,
    "not_found": ENOSERVICE,
    "overloaded": ELIMIT,
    "timeout": ERPCTIMEDOUT,
    "unavailable": EINTERNAL,
    "internal": EINTERNAL,
}
COMPRESS_NONE, COMPRESS_SNAPPY, COMPRESS_GZIP, COMPRESS_ZLIB = 0, 1, 2, 3


def _rpc_meta_class():
    """brpc's RpcMeta (policy/baidu_rpc_meta.proto), built from its field list (no generated code)."""
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="deploy/brpc_rpc_meta.proto", package="brpc.policy", syntax="proto2")

    def message(name, fields):
        m = fdp.message_type.add(name=name)
        for number, fname, ftype, type_name in fields:
            f = m.field.add(name=fname, number=number, label=F.LABEL_OPTIONAL, type=ftype)
            if type_name:
                f.type_name = type_name

    message(
        "RpcRequestMeta",
        [
            (1, "service_name", F.TYPE_STRING, None),
            (2, "method_name", F.TYPE_STRING, None),
            (3, "log_id", F.TYPE_INT64, None),
            (4, "trace_id", F.TYPE_INT64, None),
            (5, "span_id", F.TYPE_INT64, None),
            (6, "parent_span_id", F.TYPE_INT64, None),
            (7, "request_id", F.TYPE_STRING, None),
            (8, "timeout_ms", F.TYPE_INT32, None),
        ],
    )
    message("RpcResponseMeta", [(1, "error_code", F.TYPE_INT32, None), (2, "error_text", F.TYPE_STRING, None)])
    message(
        "RpcMeta",
        [
            (1, "request", F.TYPE_MESSAGE, ".brpc.policy.RpcRequestMeta"),
            (2, "response", F.TYPE_MESSAGE, ".brpc.policy.RpcResponseMeta"),
            (3, "compress_type", F.TYPE_INT32, None),
            (4, "correlation_id", F.TYPE_INT64, None),
            (5, "attachment_size", F.TYPE_INT32, None),
            (7, "authentication_data", F.TYPE_BYTES, None),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("brpc.policy.RpcMeta"))


RpcMeta = _rpc_meta_class()


def frame(meta: object, payload: bytes = b"") -> bytes:
    m = meta.SerializeToString()
    return MAGIC + struct.pack(">II", len(m) + len(payload), len(m)) + m + payload


def decompress(data: bytes, compress_type: int, limit: int) -> bytes:
    if compress_type == COMPRESS_NONE:
        return data
    if compress_type == COMPRESS_GZIP:
        return wire.gunzip(data, limit)
    if compress_type == COMPRESS_ZLIB:
        return wire.gunzip(data, limit, zlib.MAX_WBITS, "zlib")
    if compress_type == COMPRESS_SNAPPY:
        import cramjam

        try:
            if len(data) > 0 and cramjam.snappy.decompress_raw_len(data) > limit:
                raise DataError(f"the decompressed payload exceeds the {limit}-byte limit (max_body_bytes)")
            return bytes(cramjam.snappy.decompress_raw(data))
        except cramjam.DecompressionError as e:
            raise DataError(f"the payload is not snappy data ({e})") from None
    raise DataError(f"compress_type {compress_type} is not supported (0 none, 1 snappy, 2 gzip, 3 zlib)")


class BrpcProtocol(asyncio.Protocol):
    def __init__(self, server, server_state):
        self.server = server
        self.server_state = server_state
        self.limit = server.cfg["max_body_bytes"]
        self.buf = bytearray()
        self.transport = None
        self.tasks = set()
        self.closing = False
        self.authenticated = not server.api_key

    # ------------------------------------------------------------- asyncio
    def connection_made(self, transport):
        self.transport = transport
        self.server_state.connections.add(self)

    def connection_lost(self, exc):
        self.server_state.connections.discard(self)
        self.closing = True

    def data_received(self, data):
        self.buf += data
        while not self.closing and len(self.buf) >= 12:
            if self.buf[:4] != MAGIC:
                return self._close("not a baidu_std frame")
            body_size, meta_size = struct.unpack(">II", self.buf[4:12])
            if body_size > self.limit + MAX_META or meta_size > min(body_size, MAX_META):
                return self._close(f"frame of {body_size} bytes (meta {meta_size}) is over the limit")
            if len(self.buf) < 12 + body_size:
                return
            body = bytes(self.buf[12 : 12 + body_size])
            del self.buf[: 12 + body_size]
            task = asyncio.ensure_future(self._handle(body[:meta_size], body[meta_size:]))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task):
        self.tasks.discard(task)
        if self.closing and not self.tasks and self.transport is not None:
            self.transport.close()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: answer what is in flight, take no new frames, then close."""
        self.closing = True
        if not self.tasks and self.transport is not None:
            self.transport.close()

    def _close(self, why):
        """A frame we cannot read: answer what is in flight, read nothing more, close."""
        log.info("closing a brpc connection: %s", why)
        self.buf.clear()
        self.shutdown()

    # ------------------------------------------------------------ requests
    async def _handle(self, meta_bytes, payload):
        server = self.server
        meta = RpcMeta()
        try:
            meta.ParseFromString(meta_bytes)
        except DecodeError:
            return self._close("malformed RpcMeta")
        if not meta.HasField("request"):
            return self._close("RpcMeta without a request")
        req = meta.request
        timeout = server.cfg["request_timeout_s"]
        if req.timeout_ms > 0:
            timeout = min(timeout, req.timeout_ms / 1000.0)
        ctx = Ctx(timeout)
        t0 = time.perf_counter()
        err, out = None, b""
        with server.metrics.in_flight("brpc"):
            try:
                if not self.authenticated:  # brpc sends the credential with the first request of a connection
                    if meta.authentication_data != server.api_key.encode():
                        raise Unauthorized("missing or wrong API key: set it as the brpc authentication data")
                    self.authenticated = True
                if req.service_name != SERVICE:
                    raise _BrpcError(ENOSERVICE, f"no service '{req.service_name[:100]}' (this server has {SERVICE})")
                if req.method_name != METHOD:
                    raise _BrpcError(ENOMETHOD, f"no method '{req.method_name[:100]}' in {SERVICE} (it has '{METHOD}')")
                if meta.attachment_size:
                    if not 0 <= meta.attachment_size <= len(payload):
                        raise DataError(f"attachment_size {meta.attachment_size} exceeds the payload")
                    payload = payload[: len(payload) - meta.attachment_size]
                payload = decompress(payload, meta.compress_type, self.limit)
                loop = asyncio.get_running_loop()
                _, out, _, _ = await loop.run_in_executor(None, server.general.handle, payload, True, None, ctx)
            except _BrpcError as e:
                err = e
            except PipelineError as e:
                err = _BrpcError(ERROR_CODES.get(e.kind, EINTERNAL), str(e), e.kind)
            except Exception:  # noqa: BLE001 - a bug: log it once with the request id, answer EINTERNAL, keep serving
                log.exception("brpc request %s failed", ctx.id)
                err = _BrpcError(EINTERNAL, str(InternalError(f"internal error (request id {ctx.id})")), "internal")
        reply = RpcMeta(correlation_id=meta.correlation_id)
        reply.response.error_code = 0 if err is None else err.code
        if err is not None:
            reply.response.error_text = err.text
        server.metrics.observe(
            "brpc", "ok" if err is None else err.kind, 0 if err is None else err.code, time.perf_counter() - t0
        )
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(reply, out))


class _BrpcError(Exception):
    def __init__(self, code, text, kind="bad_input"):
        super().__init__(text)
        self.code, self.text, self.kind = code, text, kind


def door_protocol(server: object) -> type:
    """A uvicorn `http` protocol class that also answers baidu_std on the same port."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class DoorProtocol(asyncio.Protocol):
        def __init__(self, config, server_state, app_state, _loop=None):
            self.http_kw = dict(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
            self.server_state = server_state
            self.transport = None
            self.buf = b""
            self.timer = None

        def connection_made(self, transport):
            self.transport = transport
            # a connection that never says what it is gets closed
            self.timer = asyncio.get_running_loop().call_later(server.cfg["read_timeout_s"], transport.close)

        def data_received(self, data):
            self.buf += data
            if len(self.buf) < len(MAGIC) and MAGIC.startswith(self.buf):
                return  # not enough bytes yet to tell the doors apart
            self.timer.cancel()
            if self.buf.startswith(MAGIC):
                proto = BrpcProtocol(server, self.server_state)
            else:
                proto = AutoHTTPProtocol(**self.http_kw)
            self.transport.set_protocol(proto)
            proto.connection_made(self.transport)
            proto.data_received(self.buf)

        def connection_lost(self, exc):
            if self.timer is not None:
                self.timer.cancel()

    return DoorProtocol

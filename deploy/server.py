"""One server for exported rankers and recall encoders that answers the protocols Paddle Serving clients speak.

    python -m deploy.server --config deploy/config.yml        (or: bash scripts/start_server.sh)

A request's path, in one pass:
    transport (deploy/transports/: http.py FastAPI app, brpc.py baidu_std on the HTTP port,
               grpc_pipeline.py gRPC servicer)
      -> protocol (deploy/protocols/: pipeline, general, v1 rerank + embeddings, search)
        -> ModelService (deploy/service.py: limits, tokenizing) -> Batcher (deploy/batching.py)
          -> engine (core/engine.py)

This file only starts and stops: it builds the services from the config, registers them with
the protocols, opens the doors, and on SIGTERM/SIGINT stops accepting on every door, lets
in-flight requests finish within `shutdown_grace_s`, closes gRPC, the batchers and the Milvus
database, and exits 0.
"""

import argparse
import logging
import os
import signal
import sys
import threading

from core.errors import PipelineError
from deploy.config import ConfigError, load
from deploy.metrics import Metrics
from deploy.protocols.general import GeneralProtocol
from deploy.protocols.pipeline import EncoderPipeline, PipelineProtocol, RankerPipeline
from deploy.protocols.v1 import V1Protocol
from deploy.service import Limits, ModelService

log = logging.getLogger("deploy.server")


class Server:
    """The services and protocols of one server process (what the transports call)."""

    def __init__(self, cfg: dict, api_key: str | None = None):
        self.cfg = cfg
        self.api_key = api_key if api_key is not None else cfg.get("api_key")
        self.metrics = Metrics()
        self.limits = Limits(cfg)
        self.services = {}
        try:
            for m in cfg["models"]:
                self.services[m["name"]] = ModelService(m, self.limits, self.metrics, cfg["max_queue_rows"])
        except BaseException:
            self.close()
            raise
        pipelines = {
            n: (RankerPipeline(s) if s.kind == "ranker" else EncoderPipeline(s)) for n, s in self.services.items()
        }
        self.milvus_server = self.milvus_db = None
        self.search = None
        if cfg.get("search"):
            self.search = self._init_search(cfg["search"])
            pipelines.setdefault(cfg["search"]["name"], self.search)
        self.pipeline = PipelineProtocol(pipelines, self.limits, default=next(iter(self.services)))
        self.general = GeneralProtocol(self.services[cfg["general_model"]])
        self.v1 = V1Protocol(self.services, self.limits)

    def _init_search(self, sc):
        from core.index import MilvusIndex, is_lite
        from deploy.protocols.search import SearchService

        uri = sc["milvus_uri"]
        if is_lite(uri) and sc["milvus_port"]:
            # serve the Lite database over Milvus gRPC: this process and others then share it
            from milvus_lite.adapter.grpc.server import start_server_in_thread

            os.makedirs(os.path.dirname(uri), exist_ok=True)
            try:
                self.milvus_server, self.milvus_db, port = start_server_in_thread(
                    uri, host="127.0.0.1", port=sc["milvus_port"]
                )
            except Exception as e:  # noqa: BLE001
                raise ConfigError(
                    f"search: cannot serve the Milvus Lite database {uri} on port {sc['milvus_port']}: {e}"
                ) from None
            uri = f"http://127.0.0.1:{port}"
        index = MilvusIndex(uri, sc["collection"], token=sc.get("milvus_token"))
        if not index.exists():
            log.warning("search: no index '%s' yet at %s; /search answers 503 until it is built", sc["collection"], uri)
        elif sc["lexical_weight"] and not index.has_lexical():
            raise ConfigError(
                f"search: lexical_weight {sc['lexical_weight']} needs an index with BM25, but '{sc['collection']}' "
                f"at {uri} has none: rebuild it with python recall/build_index.py ... --lexical, "
                "or set lexical_weight: 0"
            )
        ranker = self.services[sc["ranker"]] if sc["ranker"] else None
        return SearchService(sc, self.services[sc["encoder"]], ranker, index, self.limits)

    def close(self) -> None:
        """Stop the batchers and the Milvus database (after the doors are closed)."""
        for s in self.services.values():
            s.close()
        if self.search is not None:
            self.search.index.close()
        if self.milvus_server is not None:
            self.milvus_server.stop(grace=2)
            self.milvus_db.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (see deploy/config.py)")
    p.add_argument("--http_port", type=int, default=None, help="override http_port")
    p.add_argument("--rpc_port", type=int, default=None, help="override rpc_port (0: no gRPC)")
    p.add_argument("--host", default=None, help="override host (default 127.0.0.1; 0.0.0.0 serves other machines)")
    p.add_argument(
        "--api_key",
        default=os.environ.get("SEARCH_API_KEY"),
        help="require 'Authorization: Bearer KEY' on every request but GET /health "
        "(default: $SEARCH_API_KEY, else api_key in the config)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load(args.config)
        for key in ("http_port", "rpc_port", "host"):
            if getattr(args, key) is not None:
                cfg[key] = getattr(args, key)
        server = Server(cfg, api_key=args.api_key or None)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(server))


def run(server: Server) -> int:
    """Serve until SIGTERM/SIGINT, then shut down in order. Returns the exit status (0)."""
    import uvicorn

    from deploy.transports import grpc_pipeline
    from deploy.transports.brpc import door_protocol
    from deploy.transports.http import create_app

    cfg = server.cfg
    grace = cfg["shutdown_grace_s"]

    class Uvicorn(uvicorn.Server):
        def capture_signals(self):  # ours below: uvicorn's would re-raise the signal and skip the cleanup
            import contextlib

            return contextlib.nullcontext()

    # the HTTP port also answers brpc (baidu_std) for GeneralModelService, told apart by the first bytes
    http = Uvicorn(
        uvicorn.Config(
            create_app(server),
            host=cfg["host"],
            port=cfg["http_port"],
            log_level="warning",
            http=door_protocol(server),
            limit_concurrency=cfg["max_connections"],
            timeout_keep_alive=30,
            timeout_graceful_shutdown=int(max(1, grace)),
        )
    )
    grpc_server = grpc_pipeline.start(server, cfg["host"], cfg["rpc_port"]) if cfg["rpc_port"] else None
    grpc_stopped = []

    def on_signal(signum, frame):
        if http.should_exit:  # a second signal: stop now
            http.force_exit = True
            return
        log.info("%s: draining (up to %gs), then stopping", signal.Signals(signum).name, grace)
        http.should_exit = True
        if grpc_server is not None:  # refuses new calls at once; in-flight ones get `grace`
            grpc_stopped.append(grpc_server.stop(grace))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    names = ", ".join(f"{n} ({s.cfg['backend']})" for n, s in server.services.items())
    print(
        f"serving {names}: http + brpc on {cfg['host']}:{cfg['http_port']}"
        + (f", pipeline rpc on :{cfg['rpc_port']}" if grpc_server else "")
        + (", API key required" if server.api_key else ""),
        flush=True,
    )
    try:
        http.run()
    finally:
        if grpc_server is not None:
            if not grpc_stopped:
                grpc_stopped.append(grpc_server.stop(grace))
            grpc_stopped[0].wait(grace + 1)
        done = threading.Event()
        closer = threading.Thread(target=lambda: (server.close(), done.set()), daemon=True)
        closer.start()
        closer.join(15)
        print("server stopped" + ("" if done.is_set() else " (cleanup timed out)"), flush=True)
    return 0


if __name__ == "__main__":
    main()

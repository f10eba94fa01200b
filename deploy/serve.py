"""Start the server the way C++ Paddle Serving is started, from a Paddle Serving model directory, no config file.

    python -m deploy.serve --model serving_server --port 8600 --thread 5 [--ir_optim True]
        [--gpu_ids 0] [--precision fp32|int8|bf16] [--backend paddle|paddle-bf16|onnxruntime|onnxruntime-int8]
        [--host 127.0.0.1] [--api_key KEY] [--max_seq_length 128] [--replicas 2]

The flags are `python -m paddle_serving_server.serve`'s. The port answers both of C++ Serving's
doors: brpc (`paddle_serving_client.Client`, the seed's rpc_client.py) and HTTP
(`/GeneralModelService/inference`, `HttpClient`, curl), plus /v1/rerank (or /v1/embeddings for a
recall encoder), /health and /metrics. Flags of paddle_serving_server.serve that change nothing
here are accepted with a warning. Unlike Paddle Serving, the server binds 127.0.0.1 unless --host
says otherwise.
"""

import argparse
import json
import logging
import os
import sys

from core.checkpoint import RANKER
from core.errors import PipelineError
from core.inference import BACKENDS
from deploy.config import ConfigError, from_dict

IGNORED = (
    "--runtime_thread_num",
    "--batch_infer_size",
    "--op",
    "--workdir",
    "--use_calib",
    "--mem_optim_off",
    "--use_encryption_model",
    "--encryption_rpc_port",
    "--use_trt",
    "--use_lite",
    "--use_xpu",
    "--use_ascend_cl",
    "--product_name",
    "--container_id",
    "--gpu_multi_stream",
    "--enable_prometheus",
    "--prometheus_port",
    "--request_cache_size",
    "--use_dist_model",
    "--dist_carrier_id",
    "--dist_cfg_file",
    "--dist_endpoints",
    "--dist_nranks",
    "--dist_subgraph_index",
    "--dist_worker_serving_endpoints",
    "--dist_master_serving",
    "--min_subgraph_size",
    "--gpu_memory_mb",
    "--trt_workspace_size",
    "--trt_use_static",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="start", help="start (stop: send SIGTERM to the process)")
    p.add_argument("--model", nargs="+", required=True, help="a serving_server/ directory (export_to_serving.py)")
    p.add_argument("--port", type=int, default=9393, help="brpc + HTTP port (C++ Serving's)")
    p.add_argument("--thread", type=int, default=4, help="concurrent request threads (gRPC workers)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu_ids", "--gpu_id", nargs="+", default=None)
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8", "fp16", "bf16"])
    p.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help="default: paddle (onnxruntime-int8 for --precision int8, paddle-bf16 for bf16)",
    )
    p.add_argument(
        "--ir_optim", nargs="?", const="true", default="true", help="accepted (graph optimisation is always on)"
    )
    p.add_argument("--use_mkl", nargs="?", const="true", default="false", help="accepted")
    p.add_argument("--cpu_math_thread_num", type=int, default=2, help="math threads per model")
    p.add_argument(
        "--replicas", type=int, default=1, help="engine sessions side by side, sharing --cpu_math_thread_num"
    )
    p.add_argument("--max_body_size", type=int, default=None, help="bytes (default: the server's max_body_bytes)")
    p.add_argument("--max_seq_length", type=int, default=128, help="for text requests (/v1/rerank, /v1/embeddings)")
    p.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    p.add_argument("--api_key", default=os.environ.get("SEARCH_API_KEY"))
    for flag in IGNORED:  # taken with their values, so that they are not read as the command
        p.add_argument(flag, nargs="*", default=None, help=argparse.SUPPRESS)
    return p


def config_from_args(args: argparse.Namespace) -> dict:
    if args.command != "start":
        raise ConfigError(f"'{args.command}': only 'start' is a command here; stop the server with SIGTERM (Ctrl-C)")
    if len(args.model) > 1:
        raise ConfigError(
            f"--model {' '.join(args.model)}: C++ Serving chains several models (the outputs of one feed the next); "
            "these models take token ids and return scores or embeddings, so they do not chain. Start one server "
            "per model, or serve several side by side from a config file: python -m deploy.server --config ..."
        )
    model_dir = os.path.abspath(args.model[0])
    kind = "ranker"
    meta = os.path.join(model_dir, RANKER)
    if os.path.isfile(meta):
        with open(meta) as f:
            kind = "encoder" if json.load(f).get("kind") == "encoder" else "ranker"
    backend = args.backend or {"int8": "onnxruntime-int8", "bf16": "paddle-bf16"}.get(args.precision, "paddle")
    if args.precision == "fp16":
        logging.warning("--precision fp16: a GPU precision; this CPU server serves fp32")
    if args.device != "cpu" or args.gpu_ids:
        logging.warning("--device/--gpu_ids: this server runs on CPU (Paddle Inference, ONNX Runtime)")
    raw = {
        "http_port": args.port,
        "rpc_port": 0,
        "worker_num": max(1, args.thread),
        "host": args.host,
        "models": [
            {
                "name": os.path.basename(model_dir.rstrip("/")) or "model",
                "model_dir": model_dir,
                "kind": kind,
                "backend": backend,
                "max_seq_length": args.max_seq_length,
                "cpu_threads": args.cpu_math_thread_num,
                "replicas": args.replicas,
            }
        ],
    }
    if args.max_body_size:
        raw["max_body_bytes"] = args.max_body_size
    if not os.path.isdir(model_dir):
        raise ConfigError(f"--model {args.model[0]}: no such directory (export_to_serving.py writes serving_server/)")
    return from_dict(raw, ".", "--model")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args, unknown = parser().parse_known_args(argv)
    for flag in IGNORED:
        if getattr(args, flag[2:]) is not None:
            logging.warning("%s: a Paddle Serving flag that changes nothing here; ignored", flag)
    for flag in unknown:
        logging.warning("%s: unknown argument; ignored", flag)
    try:
        cfg = config_from_args(args)
        from deploy.server import Server, run

        server = Server(cfg, api_key=args.api_key or None)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(server))


if __name__ == "__main__":
    main()

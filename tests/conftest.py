import os
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KUAKE = os.environ.get("KUAKE_DIR", os.path.join(ROOT, "..", "shared", "datasets", "kuake_qtr"))


def run(args, env=None, timeout=600, check=True):
    """Run a project command with the venv's Python; returns CompletedProcess (text)."""
    e = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", GLOG_minloglevel="2", PYTHONWARNINGS="ignore")
    e.update(env or {})
    cmd = [sys.executable, *args] if args[0].endswith(".py") or args[0] == "-m" else args
    p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def head(src, dst, n):
    """Copy the first n lines (header included) of a file."""
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return str(dst)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    run(["datasets/prepare_kuake_qtr.py", "--src", KUAKE, "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def small(data_dir, tmp_path_factory):
    """Small slices of the real files, for fast training runs."""
    d = tmp_path_factory.mktemp("small")
    return {
        "pair_train": head(data_dir / "sort/train_pairwise.csv", d / "train_pairwise.csv", 129),
        "dev": head(data_dir / "sort/dev_pairwise.csv", d / "dev_pairwise.csv", 97),
        "rank_train": head(data_dir / "rank/train.csv", d / "rank_train.csv", 161),
        "test": head(data_dir / "sort/test_pairwise.csv", d / "test_pairwise.csv", 40),
    }


@pytest.fixture(scope="session")
def tiny_model(data_dir, tmp_path_factory):
    """A 2-layer ERNIE with random weights and a character vocabulary of the data (no dropout)."""
    from core.data import read_labeled_pairs
    from core.tiny import make_tiny_ernie

    rows = read_labeled_pairs(str(data_dir / "rank/train.csv")) + read_labeled_pairs(
        str(data_dir / "sort/dev_pairwise.csv")
    )
    d = tmp_path_factory.mktemp("tiny_ernie")
    return make_tiny_ernie(str(d), [r["query"] + r["title"] for r in rows], dropout=0.0)


CORPUS = [
    "感冒了吃什么药好得快",
    "头疼怎么办？",
    "How to bake bread",
    "宝宝发烧怎么办",
    "感冒药有哪些",
    "高血压不能吃什么",
    "糖尿病的早期症状",
    "咳嗽老不好怎么办",
]
PAIRS = [
    ("感冒吃什么药", "感冒了吃什么药好得快"),
    ("头疼怎么办", "头疼怎么办？"),
    ("宝宝发烧", "How to bake bread"),
    ("it's a query", "a title with 'quotes' and \"double\" ones"),
]


def start_server(config, log_path, env=None):
    """Start `python -m deploy.server --config config` and wait for /health; returns (proc, base url)."""
    import requests
    import yaml

    with open(config, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    e = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    e.update(env or {})
    with open(log_path, "w") as log:  # the server writes to its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "deploy.server", "--config", str(config)],
            cwd=ROOT,
            env=e,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{cfg['http_port']}"
    for _ in range(240):
        try:
            if requests.get(base + "/health", timeout=1).ok:
                return proc, base
        except requests.ConnectionError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.25)
    proc.kill()
    raise AssertionError(open(log_path).read())


_PORTS_GIVEN = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port nobody listens on, never the same one twice in a session (a server given the same port for HTTP and
    gRPC fails to bind the second), and below the kernel's ephemeral range, so no outgoing connection can take it
    between this choice and the server's bind."""
    import random

    low = min(_ephemeral_low(), 32768)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError("no free port found below the ephemeral range")


@pytest.fixture(scope="session")
def served(tmp_path_factory, tiny_model):
    """A random tiny pairwise ranker, exported (Paddle + ONNX) and packaged for serving, behind a server."""
    import paddle

    from core.engine import to_onnx
    from core.exporting import export_static
    from ernie_matching.common import build

    d = tmp_path_factory.mktemp("served")
    paddle.seed(7)
    model, tokenizer, _, _ = build(tiny_model)
    exported = str(d / "export")
    export_static(model, exported)
    tokenizer.save_pretrained(exported)
    to_onnx(exported, quantize_int8=True)
    from recall.model import build as build_encoder
    from recall.model import export as export_encoder

    enc_model, enc_tok, _, enc_meta = build_encoder(tiny_model, pooling="mean")
    export_encoder(enc_model, enc_tok, enc_meta, str(d / "encoder"))
    corpus = d / "corpus.csv"
    corpus.write_text("".join(t + "\n" for t in CORPUS), encoding="utf-8")
    milvus_uri = str(d / "milvus.db")
    run(
        [
            "recall/build_index.py",
            "--model_dir",
            str(d / "encoder"),
            "--corpus_file",
            str(corpus),
            "--milvus_uri",
            milvus_uri,
            "--collection",
            "titles",
            "--max_seq_length",
            "32",
            "--index_type",
            "FLAT",
        ]
    )
    run(
        [
            "deploy/export_to_serving.py",
            "--dirname",
            exported,
            "--server_path",
            str(d / "serving_server"),
            "--client_path",
            str(d / "serving_client"),
            "--fetch_alias_names",
            "predict",
        ]
    )
    http, rpc, milvus_port = free_port(), free_port(), free_port()
    cfg = d / "config.yml"
    cfg.write_text(f"""
http_port: {http}
rpc_port: {rpc}
host: 127.0.0.1
max_pairs_per_request: 16
max_body_bytes: 1048576
max_text_chars: 2000
max_tokens_per_request: 1024
models:
  - name: ernie_matching
    model_dir: serving_server
    max_seq_length: 32
    cpu_threads: 1
    batching: {{max_batch_size: 32, max_wait_ms: 30}}
  - name: ranker_onnx
    model_dir: export
    backend: onnxruntime
    max_seq_length: 32
    cpu_threads: 2
    replicas: 2
  - name: encoder
    model_dir: encoder
    kind: encoder
    max_seq_length: 32
    cpu_threads: 1
search:
  encoder: encoder
  ranker: ernie_matching
  milvus_uri: milvus.db
  collection: titles
  recall_num: 6
  top_k: 3
  recall_weight: 0.5
  milvus_port: {milvus_port}
""")
    proc, base = start_server(cfg, d / "server.log")
    from core.engine import RankerEngine

    engine = RankerEngine(str(d / "serving_server"), max_seq_length=32, cpu_threads=1)
    from core.engine import EncoderEngine

    encoder = EncoderEngine(str(d / "encoder"), max_seq_length=32, cpu_threads=1)
    yield {
        "encoder": encoder,
        "base": base,
        "rpc": f"127.0.0.1:{rpc}",
        "http_port": http,
        "engine": engine,
        "dir": d,
        "proc": proc,
        "exported": exported,
        "milvus": f"http://127.0.0.1:{milvus_port}",
        "config": cfg,
    }
    proc.terminate()
    proc.wait(timeout=30)

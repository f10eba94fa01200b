"""Serving benchmark: engines, quality per backend, and servers side by side with the peers users would pick.

    python benchmarks/serving.py --params_path work_dirs/distill/ce_12l_cls/model_600 \
        --student work_dirs/distill/ce_6l_cls/model_900 work_dirs/distill/ce_4l_cls/model_900

The model is a 12-layer/384 cross-encoder on multilingual-e5-small with CLS pooling (so a Hugging Face
BertForSequenceClassification holds exactly the same model, and the peers serve the same weights); the
optional student is its distillation into fewer layers (cross_encoder/train_ce.py --teacher --num_layers N).

(a) engines: pairs/s at batch 32 on real KUAKE-QTR dev pairs (median of --repeats runs, 2 threads) for every
    backend we ship (Paddle Inference fp32, Paddle Inference oneDNN bf16, ONNX Runtime fp32, ONNX Runtime
    int8), for ONNX graph variants we do not ship unless they are faster (benchmarks/onnx_variants.py:
    ORT's transformer fusions, fused attention, their int8), and for sentence-transformers' CrossEncoder on
    the same weights; with FLOPs per pair and the fraction of the cores' peak each reaches.
(b) quality per backend: AUC on dev and on the query-disjoint holdout (unseen queries).
(c) servers, one at a time on the same 2 cores, all driven by the same client program: POST of 1 query x 20
    real KUAKE-QTR titles, 1 / 8 / 32 concurrent clients, --duration seconds each after a warm-up:
    our server on each backend (and the student), Infinity (torch and optimum engines, same weights as a
    one-logit Hugging Face directory), and the seed's Paddle Serving 0.9 Pipeline server (its web_service
    flow on paddle 2.6.2, benchmarks/seed_pipeline/). pairs/s, p50/p95/p99, errors, peak RSS of the server's
    process tree, and score agreement with our Paddle fp32 scores.
Writes benchmarks/results/serving.{md,json}, serving_throughput.png, serving_latency.png.
Peers need scripts/bench_setup.sh (.venv-bench, .venv-infinity, the Python 3.9 Paddle Serving tool).
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import report

from core.data import pad, read_labeled_pairs, read_tsv
from core.metrics import auc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY39 = os.path.join(ROOT, ".cache", "paddle-serving-py39", "bin", "python3.9-serving")
INFINITY = os.path.join(ROOT, ".venv-infinity", "bin", "infinity_emb")
SHIPPED = ("paddle", "paddle-bf16", "onnxruntime", "onnxruntime-int8")
# the cores' peak: 2 cores x 2 AVX-512 FMA units x 16 fp32 lanes x 2 flops x ~1.5 GHz sustained all-core
# (about 190 GFLOP/s fp32); bf16 dot products (vdpbf16ps) do twice the work per instruction; int8 VNNI
# (vpdpbusd) four times (about 750 GOP/s)
PEAK = {"fp32": 190e9, "bf16": 380e9, "int8": 750e9}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid):
    """Resident memory of a process and all its descendants (the seed's Pipeline server forks workers)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024.0
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- (a) engines


def export(params_path, out):
    from core.exporting import export_main
    from cross_encoder.common import build

    if not os.path.isfile(os.path.join(out, "inference.int8.onnx")):
        export_main(build, "", ["--params_path", params_path, "--output_path", out, "--onnx", "--int8"])
    return out


def model_shape(params_path):
    cfg = json.load(open(os.path.join(params_path, "config.json")))
    return cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"]


def flops_per_pair(lengths, layers, hidden, ffn):
    """Multiply-adds x 2 of the encoder for pairs of these token counts (projections, FFN, attention scores
    and context), plus the pooler and classifier."""
    lengths = np.asarray(lengths, dtype=np.float64)
    dense = 2 * lengths * (4 * hidden * hidden + 2 * hidden * ffn)
    attention = 2 * 2 * lengths * lengths * hidden
    return float(np.mean(layers * (dense + attention) + 2 * hidden * hidden + 2 * hidden * 2))


def time_runner(run, batches, n_pairs, repeats):
    run(batches[0])  # warm-up
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            run(b)
        runs.append(n_pairs / (time.perf_counter() - t0))
    return {"median": round(statistics.median(runs), 1), "runs": [round(r, 1) for r in runs]}


def ort_file_runner(path, threads, sessions=1, pad_id=0):
    """A function of a padded id batch -> scores from an ONNX file; with sessions > 1, that many sessions of
    threads // sessions threads each run a group of the rows side by side, cut and batched as the engine's
    `replicas` do (core.data.run_by_length)."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    import onnxruntime as ort

    from core.data import RUN_OVERHEAD_TOKENS, run_by_length

    def session(n_threads):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = n_threads, 1, 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    pool = [session(max(1, threads // sessions)) for _ in range(sessions)]
    names = [i.name for i in pool[0].get_inputs()]

    def one(s, ids):
        ids = ids[:, : int(np.max(np.sum(ids != pad_id, axis=1)))]  # drop the columns that are padding in every row
        feeds = {"input_ids": ids, "token_type_ids": np.zeros_like(ids)}
        return np.asarray(s.run(None, {n: feeds[n] for n in names})[0]).reshape(len(ids))

    if sessions == 1:
        return lambda ids: one(pool[0], ids)
    workers, idle = ThreadPoolExecutor(sessions), queue.SimpleQueue()
    for s in pool:
        idle.put(s)

    def batch(rows):  # as the engine's replicas: a free session runs each batch
        s = idle.get()
        try:
            return one(s, np.stack(rows))
        finally:
            idle.put(s)

    def run(ids):
        return run_by_length(
            list(ids),
            len(ids),
            batch,
            length=lambda r: int(np.sum(r != pad_id)),
            overhead_tokens=RUN_OVERHEAD_TOKENS,
            pool=workers,
            workers=sessions,
        )

    return run


def ids_runner(engine):
    """A function of a padded id batch -> the engine's scores (token types all 0, as our encoders make them)."""
    return lambda ids: engine.run_feeds({"input_ids": ids, "token_type_ids": np.zeros_like(ids)})


def engine_speeds(name, params_path, export_dir, pairs, args, variants):
    """pairs/s of each shipped backend (and each graph variant) on the same length-sorted batches of 32."""
    from core.engine import RankerEngine

    layers, hidden, ffn, heads = model_shape(params_path)
    ref = RankerEngine(export_dir, backend="paddle", max_seq_length=args.max_seq_length, cpu_threads=args.threads)
    enc = ref.encode(pairs)
    order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]))
    batches = [
        pad([enc[j][0] for j in order[i : i + args.batch_size]], ref.pad_id)
        for i in range(0, len(enc), args.batch_size)
    ]
    rows_of = {  # the encoded rows of each padded batch, for engines that split a batch themselves
        id(b): [enc[j] for j in order[i : i + args.batch_size]]
        for b, i in zip(batches, range(0, len(enc), args.batch_size))
    }
    flops = flops_per_pair([len(e[0]) for e in enc], layers, hidden, ffn)
    runners = {}
    for backend in SHIPPED:
        eng = (
            ref
            if backend == "paddle"
            else RankerEngine(export_dir, backend=backend, max_seq_length=args.max_seq_length, cpu_threads=args.threads)
        )
        runners[backend] = ids_runner(eng)
    if args.replicas > 1:  # the same rows, each batch of 32 split between one-thread sessions side by side
        for backend in ("onnxruntime", "onnxruntime-int8"):
            eng = RankerEngine(
                export_dir,
                backend=backend,
                max_seq_length=args.max_seq_length,
                cpu_threads=args.threads,
                replicas=args.replicas,
                batch_size=args.batch_size,
            )
            runners[f"{backend}, {args.replicas} sessions"] = lambda b, eng=eng: eng.run_encoded(rows_of[id(b)])
    if args.replicas > 1 and variants:  # measured, not shipped: Paddle predictors side by side
        eng = RankerEngine(
            export_dir,
            backend="paddle-bf16",
            max_seq_length=args.max_seq_length,
            cpu_threads=args.threads,
            replicas=args.replicas,
            batch_size=args.batch_size,
        )
        runners[f"paddle-bf16, {args.replicas} sessions"] = lambda b, eng=eng: eng.run_encoded(rows_of[id(b)])
    if variants:
        # measured, not shipped unless faster: oneDNN for fp32, one thread instead of two
        mkl = RankerEngine(export_dir, max_seq_length=args.max_seq_length, cpu_threads=args.threads, enable_mkldnn=True)
        one = RankerEngine(export_dir, backend="onnxruntime-int8", max_seq_length=args.max_seq_length, cpu_threads=1)
        for label, eng in (("paddle oneDNN fp32", mkl), ("onnxruntime-int8, 1 thread", one)):
            runners[label] = ids_runner(eng)
        from onnx_variants import write_variants

        for v, path in write_variants(
            export_dir, os.path.join(args.work_dir, f"variants_{name}"), heads, hidden
        ).items():
            runners["onnxruntime " + v] = ort_file_runner(path, args.threads, pad_id=ref.pad_id)
            if args.replicas > 1 and "int8" in v:
                runners[f"onnxruntime {v}, {args.replicas} sessions"] = ort_file_runner(
                    path, args.threads, args.replicas, ref.pad_id
                )
    base = np.concatenate([np.ravel(runners["paddle"](b)) for b in batches])
    rows = {}
    for backend, run in runners.items():
        probs = np.concatenate([np.ravel(run(b)) for b in batches])
        r = time_runner(run, batches, len(pairs), args.repeats)
        precision = "int8" if "int8" in backend else "bf16" if "bf16" in backend else "fp32"
        cores = 1 if "1 thread" in backend else args.threads
        r.update(
            {
                "model": name,
                "backend": backend,
                "shipped": backend in SHIPPED
                or backend in (f"onnxruntime, {args.replicas} sessions", f"onnxruntime-int8, {args.replicas} sessions"),
                "max_abs_prob_diff_vs_paddle_fp32": float(np.max(np.abs(probs - base))),
                "gflop_per_pair": round(flops / 1e9, 3),
                "peak_fraction": round(flops * r["median"] / (PEAK[precision] * cores / 2), 3),
                "precision": precision,
            }
        )
        rows[backend] = r
        print(
            f"[{name}] {backend}: {r['median']} pairs/s (runs {r['runs']}), {r['peak_fraction']:.1%} of peak",
            flush=True,
        )
    return rows, flops


def pytorch_files(params_path, export_dir, pairs, args):
    """Our weights and tokenizer as the PyTorch side reads them (weights.npz, spec.json, tokenizer.json)."""
    import paddle

    from core.backbone import load_tokenizer
    from core.checkpoint import params_path as params_file
    from core.e5_tokenizer import hf_tokenizer_json

    wd = os.path.join(args.work_dir, "pytorch")
    os.makedirs(wd, exist_ok=True)
    state = {k: v.numpy() for k, v in paddle.load(params_file(params_path)).items()}
    np.savez(os.path.join(wd, "weights.npz"), **state)
    tok = load_tokenizer(export_dir)
    spec = {
        "config": json.load(open(os.path.join(params_path, "config.json"))),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "max_seq_length": args.max_seq_length,
        "pairs": pairs,
        "tokenizer_json": hf_tokenizer_json(tok, os.path.join(wd, "tokenizer.json")),
    }
    return wd, spec, tok


def sentence_transformers_speed(wd, spec, engine, tok, pairs, env):
    py = os.path.join(ROOT, ".venv-bench", "bin", "python")
    if not os.path.exists(py):
        print("no .venv-bench: run scripts/bench_setup.sh to include sentence-transformers", flush=True)
        return None
    check = engine.encode(pairs[:64])
    check_ids = pad([e[0] for e in check], tok.pad_token_id)
    ours = engine.run_feeds({"input_ids": check_ids, "token_type_ids": np.zeros_like(check_ids)})
    spec = dict(spec, check_ids=check_ids.tolist())
    json.dump(spec, open(os.path.join(wd, "spec.json"), "w"), ensure_ascii=False)
    out = os.path.join(wd, "result.json")
    script = os.path.join(ROOT, "benchmarks", "pytorch_reference.py")
    hf = os.path.join(wd, "hf_model")
    subprocess.run(
        [py, script, "crossencoder", os.path.join(wd, "weights.npz"), hf, os.path.join(wd, "spec.json"), out],
        check=True,
        env=env,
    )
    shutil.rmtree(hf, ignore_errors=True)
    r = json.load(open(out))
    diff = float(np.max(np.abs(np.asarray(r["check_probs"]) - ours)))
    print(f"sentence-transformers: {r['pairs_per_s']:.1f} pairs/s (max |prob diff| vs ours {diff:.1e})", flush=True)
    return {
        "median": round(r["pairs_per_s"], 1),
        "runs": [round(x, 1) for x in r["runs"]],
        "max_abs_prob_diff_vs_paddle_fp32": diff,
        "torch": r["torch"],
        "backend": "sentence-transformers",
    }


# ---------------------------------------------------------------- (b) quality


def quality(export_dir, data_dir, args, backends):
    from core.engine import RankerEngine

    sets = {
        "dev": read_labeled_pairs(os.path.join(data_dir, "sort/dev_pairwise.csv")),
        "unseen": read_labeled_pairs(os.path.join(data_dir, "sort/holdout_pairwise.csv")),
    }
    out = {}
    for backend in backends:
        eng = RankerEngine(export_dir, backend=backend, max_seq_length=args.max_seq_length, cpu_threads=args.threads)
        out[backend] = {
            k: round(auc([r["label"] for r in rows], eng.score([(r["query"], r["title"]) for r in rows])), 4)
            for k, rows in sets.items()
        }
        print(f"quality {os.path.basename(export_dir)} {backend}: {out[backend]}", flush=True)
    return out


# ---------------------------------------------------------------- (c) servers


class Server:
    """A server under test: how to start it, how to ask it to re-rank, how to read its scores."""

    def __init__(self, name, cmd, cwd, env, port, path, body, scores, ready_path="/health", family="ours"):
        self.name, self.cmd, self.cwd, self.env, self.port = name, cmd, cwd, env, port
        self.path, self.body, self.scores, self.ready_path, self.family = path, body, scores, ready_path, family

    def start(self, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        import requests

        url = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start ({self.proc.returncode}); see {log_path}")
            try:
                r = requests.post(url + self.path, json=self.body("感冒", ["感冒吃什么药"]), timeout=30)
                if r.ok and len(self.scores(r.json())) == 1:
                    return url
            except (requests.ConnectionError, requests.Timeout, ValueError, KeyError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer within 300 s; see {log_path}")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self.log.close()


def rerank_scores(reply):
    """Scores in document order from a Cohere-style rerank reply (ours, Infinity): {index, relevance_score}s."""
    out = [0.0] * len(reply["results"])
    for r in reply["results"]:
        out[r["index"]] = r["relevance_score"]
    return out


def ours(name, export_dir, backend, args, replicas=None):
    """Our server on one backend: args.threads threads in all, in `replicas` sessions (default: args.replicas
    for ONNX Runtime, 1 for Paddle Inference, whose predictors run slower side by side)."""
    if replicas is None:
        replicas = args.replicas if backend.startswith("onnxruntime") else 1
    port = free_port()
    cfg = os.path.join(args.work_dir, f"server_{name}.yml".replace(" ", "_").replace(",", ""))
    with open(cfg, "w") as f:
        f.write(
            f"http_port: {port}\nrpc_port: 0\nhost: 127.0.0.1\nmax_pairs_per_request: 256\nmodels:\n"
            f"  - name: ranker\n    model_dir: {export_dir}\n    backend: {backend}\n"
            f"    max_seq_length: {args.max_seq_length}\n    cpu_threads: {args.threads}\n"
            f"    replicas: {replicas}\n"
            f"    batching: {{max_batch_size: {args.batch_size}, max_wait_ms: 5}}\n"
        )
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))

    return Server(
        name,
        [sys.executable, "-m", "deploy.server", "--config", cfg],
        ROOT,
        env,
        port,
        "/v1/rerank",
        lambda q, docs: {"query": q, "documents": docs, "top_n": len(docs)},
        rerank_scores,
    )


def infinity(name, hf_dir, engine, args, prefer_quantized=True):
    port = free_port()
    home = os.path.join(args.work_dir, f"hf_home_{name}")
    shutil.rmtree(home, ignore_errors=True)  # Infinity caches optimized ONNX files by model id: start clean
    env = dict(
        os.environ,
        HF_HOME=home,
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        DO_NOT_TRACK="1",
    )
    env.pop("PYTHONPATH", None)
    cmd = [
        INFINITY,
        "v2",
        "--model-id",
        ".",
        "--served-model-name",
        "reranker",
        "--engine",
        engine,
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--batch-size",
        str(args.batch_size),
    ]
    if engine == "optimum" and not prefer_quantized:
        cmd.append("--onnx-do-not-prefer-quantized")

    # --model-id . from inside the directory: Infinity 0.0.78 with optimum 2.1 finds ONNX files by bare name only
    return Server(
        name,
        cmd,
        hf_dir,
        env,
        port,
        "/rerank",
        lambda q, docs: {"query": q, "documents": docs, "model": "reranker", "return_documents": False},
        rerank_scores,
        family="Infinity",
    )


def seed_pipeline(name, seed_dir, tokenizer_json, args):
    rpc, http = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    run_dir = os.path.join(args.work_dir, "seed_pipeline_run")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    script = os.path.join(ROOT, "benchmarks", "seed_pipeline", "web_service.py")
    cmd = [PY39, "-W", "ignore", script, seed_dir, tokenizer_json, str(rpc), str(http), str(args.threads)]

    def body(q, docs):  # the seed's clients: keys "0".."n-1", each value str() of a dict
        return {"key": [str(i) for i in range(len(docs))], "value": [str({"query": q, "title": d}) for d in docs]}

    def scores(reply):
        if reply.get("err_no") != 0:
            raise KeyError(reply.get("err_msg"))
        return json.loads(reply["value"][0])

    return Server(name, cmd, run_dir, env, http, "/ernie/prediction", body, scores, family="seed Pipeline")


def load_test(server, url, queries, titles, args, pid):
    import requests

    rows = []
    for conc in args.concurrency:
        latencies, errors, lock, stop = [], [0], threading.Lock(), threading.Event()
        peak = [tree_rss_mb(pid)]

        def sampler():
            while not stop.wait(0.5):
                peak[0] = max(peak[0], tree_rss_mb(pid))

        def client(i, until, record):
            rng = random.Random(1000 * conc + i)
            s = requests.Session()
            while time.perf_counter() < until:
                q, docs = queries[rng.randrange(len(queries))], rng.sample(titles, args.titles)
                t0 = time.perf_counter()
                try:
                    r = s.post(url + server.path, json=server.body(q, docs), timeout=120)
                    ok = r.status_code == 200 and len(server.scores(r.json())) == args.titles
                except Exception:  # noqa: BLE001 - counted as an error
                    ok = False
                dt = time.perf_counter() - t0
                if record:
                    with lock:
                        latencies.append(dt)
                        errors[0] += 0 if ok else 1

        def phase(seconds, record):
            until = time.perf_counter() + seconds
            threads = [threading.Thread(target=client, args=(i, until, record)) for i in range(conc)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return time.perf_counter() - t0

        phase(args.warmup, False)
        mon = threading.Thread(target=sampler, daemon=True)
        mon.start()
        wall = phase(args.duration, True)
        stop.set()
        lat = np.asarray(latencies) * 1000
        row = {
            "server": server.name,
            "concurrency": conc,
            "requests": len(latencies),
            "pairs_per_s": round(len(latencies) * args.titles / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p95_ms": round(float(np.percentile(lat, 95)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "errors": errors[0],
            "rss_mb": round(peak[0], 1),
            "latencies_ms": [round(float(x), 2) for x in lat],
        }
        print(
            f"  {server.name} x{conc}: {row['pairs_per_s']} pairs/s, p50 {row['p50_ms']} ms, "
            f"p99 {row['p99_ms']} ms, errors {row['errors']}, RSS {row['rss_mb']} MB",
            flush=True,
        )
        rows.append(row)
    return rows


def agreement(server, url, requests_set, reference):
    """Max |score - our Paddle fp32 score| over the fixed requests, and how many keep our top-5 order."""
    import requests

    diffs, same_top5 = [], 0
    for (q, docs), ref in zip(requests_set, reference):
        got = np.asarray(server.scores(requests.post(url + server.path, json=server.body(q, docs), timeout=120).json()))
        diffs.append(float(np.max(np.abs(got - ref))))
        same_top5 += int(list(np.argsort(-got, kind="mergesort")[:5]) == list(np.argsort(-ref, kind="mergesort")[:5]))
    return {"max_abs_score_diff": max(diffs), "same_top5_order": f"{same_top5}/{len(requests_set)}"}


def run_servers(specs, queries, titles, fixed, reference, args):
    """Each server in turn, --rounds times over (interleaved, so slow spells of a shared machine fall on all);
    per server and level the round with the median throughput is reported, with every round's pairs/s."""
    runs, agree = {}, {}
    for rnd in range(args.rounds):
        for server, ref_key in specs:
            print(f"server {server.name} (round {rnd + 1} of {args.rounds})", flush=True)
            try:
                url = server.start(os.path.join(args.work_dir, f"log_{server.name}.txt"))
            except RuntimeError as e:
                print(f"  skipped: {e}", flush=True)
                continue
            try:
                if server.name not in agree:
                    agree[server.name] = agreement(server, url, fixed, reference[ref_key])
                    print(f"  agreement with our fp32 scores: {agree[server.name]}", flush=True)
                for row in load_test(server, url, queries, titles, args, server.proc.pid):
                    runs.setdefault((server.name, row["concurrency"]), []).append(row)
            finally:
                server.stop()
    results = []
    for rows in runs.values():
        rows = sorted(rows, key=lambda r: r["pairs_per_s"])
        mid = dict(rows[(len(rows) - 1) // 2])
        mid["rounds_pairs_per_s"] = [r["pairs_per_s"] for r in rows]
        mid["errors"] = sum(r["errors"] for r in rows)
        mid["rss_mb"] = max(r["rss_mb"] for r in rows)
        results.append(mid)
    return results, agree


# ---------------------------------------------------------------- report


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params_path", required=True, help="12-layer cross-encoder checkpoint with CLS pooling")
    p.add_argument(
        "--student",
        nargs="*",
        default=[],
        help="distilled students (train_ce.py --teacher --num_layers N)",
    )
    p.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    p.add_argument("--work_dir", default=os.path.join(ROOT, "work_dirs", "serving_bench"))
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--n_pairs", type=int, default=640, help="dev pairs for the engine speed runs")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="our server's engine sessions, side by side, sharing --threads (replicas in the server config)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--duration", type=float, default=40.0, help="seconds of load per concurrency level")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of load before each measured level")
    p.add_argument("--titles", type=int, default=20)
    p.add_argument("--parts", default="engines,quality,servers")
    p.add_argument("--servers", default="ours,student,infinity,seed", help="which servers (part servers)")
    p.add_argument("--only", default=None, help="a regular expression: run only the servers whose name matches")
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds over the servers (median reported)")
    p.add_argument("--name", default="serving", help="results file name (benchmarks/results/NAME.md ...)")
    args = p.parse_args()
    args.work_dir = os.path.abspath(args.work_dir)
    os.makedirs(args.work_dir, exist_ok=True)
    parts, which = set(args.parts.split(",")), set(args.servers.split(","))
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    from core.inference import set_threads

    set_threads(args.threads)

    dev = read_labeled_pairs(os.path.join(args.data_dir, "sort/dev_pairwise.csv"))
    sample = random.Random(0).sample(dev, args.n_pairs)
    pairs = [(r["query"], r["title"]) for r in sample]
    models = {"12-layer": (args.params_path, export(args.params_path, os.path.join(args.work_dir, "export_12l")))}
    students = {}  # name -> export dir
    for ckpt in args.student:
        layers = model_shape(ckpt)[0]
        students[f"{layers}-layer student"] = export(ckpt, os.path.join(args.work_dir, f"export_{layers}l"))
        models[f"{layers}-layer student"] = (ckpt, students[f"{layers}-layer student"])
    data = {"settings": {k: v for k, v in vars(args).items() if k not in ("out",)}, "peak_ops_per_s": PEAK}
    for k in ("params_path", "data_dir", "work_dir"):
        data["settings"][k] = report._portable(data["settings"][k]) if data["settings"][k] else None
    data["settings"]["student"] = [report._portable(c) for c in args.student]

    from core.engine import RankerEngine

    teacher_dir = models["12-layer"][1]
    fp32 = RankerEngine(teacher_dir, backend="paddle", max_seq_length=args.max_seq_length, cpu_threads=args.threads)
    wd, spec, tok = pytorch_files(args.params_path, teacher_dir, pairs, args)
    engines, flops = [], {}
    if "engines" in parts:
        for name, (ckpt, d) in models.items():
            rows, flops[name] = engine_speeds(name, ckpt, d, pairs, args, variants=name == "12-layer")
            engines += rows.values()
        st = sentence_transformers_speed(wd, spec, fp32, tok, pairs, env)
        if st:
            st.update(
                {
                    "model": "12-layer",
                    "shipped": False,
                    "precision": "fp32",
                    "peak_fraction": round(flops["12-layer"] * st["median"] / PEAK["fp32"], 3),
                }
            )
            engines.append(st)
    data["engines"] = engines
    qual = {}
    if "quality" in parts:
        for name, (_, d) in models.items():
            qual[name] = quality(d, args.data_dir, args, ("paddle", "paddle-bf16", "onnxruntime-int8"))
    data["quality"] = qual

    servers, agree = [], {}
    if "servers" in parts:
        # texts with quotes or backslashes are left out: the seed's server parses each pair with
        # json.loads(str(dict).replace("'", '"')), which breaks on them
        def plain(t):
            return not any(c in t for c in "'\"\\")

        corpus = [r["title"] for r in read_tsv(os.path.join(args.data_dir, "recall/corpus.csv"), ("title",))]
        corpus = [t for t in corpus if plain(t)]
        queries = sorted({q for q, _ in pairs if plain(q)})
        rng = random.Random(7)
        fixed = [(queries[rng.randrange(len(queries))], rng.sample(corpus, args.titles)) for _ in range(10)]
        reference = {"12-layer": [fp32.score([(q, d) for d in docs]) for q, docs in fixed]}
        specs = []
        if "ours" in which:
            specs += [(ours(f"ours {b}", teacher_dir, b, args), "12-layer") for b in SHIPPED]
            if args.replicas > 1:  # the step measured: the same int8 engine as one session of args.threads threads
                specs.append(
                    (ours("ours onnxruntime-int8, 1 session", teacher_dir, "onnxruntime-int8", args, 1), "12-layer")
                )
        for student_name, sdir in students.items() if "student" in which else ():
            student_fp32 = RankerEngine(sdir, backend="paddle", max_seq_length=args.max_seq_length, cpu_threads=2)
            reference[student_name] = [student_fp32.score([(q, d) for d in docs]) for q, docs in fixed]
            specs += [
                (ours(f"ours {student_name} {b}", sdir, b, args), student_name)
                for b in ("onnxruntime-int8", "paddle-bf16")
            ]
        if "infinity" in which and os.path.exists(INFINITY):
            hf = os.path.join(args.work_dir, "hf_reranker")
            if not os.path.isfile(os.path.join(hf, "model_quantized.onnx")):
                json.dump(spec, open(os.path.join(wd, "spec.json"), "w"), ensure_ascii=False)
                subprocess.run(
                    [
                        os.path.join(ROOT, ".venv-infinity", "bin", "python"),
                        os.path.join(ROOT, "benchmarks", "pytorch_reference.py"),
                        "hf_reranker",
                        os.path.join(wd, "weights.npz"),
                        os.path.join(wd, "spec.json"),
                        hf,
                    ],
                    check=True,
                    env=env,
                )
            specs += [
                (infinity("infinity torch", hf, "torch", args), "12-layer"),
                (infinity("infinity optimum fp32", hf, "optimum", args, prefer_quantized=False), "12-layer"),
                (infinity("infinity optimum int8", hf, "optimum", args), "12-layer"),
            ]
        elif "infinity" in which:
            print("no .venv-infinity: run scripts/bench_setup.sh to include Infinity", flush=True)
        if "seed" in which and os.path.exists(PY39):
            seed_dir = os.path.join(args.work_dir, "seed_serving_server")
            if not os.path.isfile(os.path.join(seed_dir, "inference.pdmodel")):
                subprocess.run(
                    [
                        PY39,
                        "-W",
                        "ignore",
                        os.path.join(ROOT, "benchmarks", "seed_pipeline", "export_seed.py"),
                        args.params_path,
                        seed_dir,
                    ],
                    check=True,
                )
            specs.append(
                (seed_pipeline("seed Pipeline (paddle 2.6.2)", seed_dir, spec["tokenizer_json"], args), "12-layer")
            )
        elif "seed" in which:
            print(
                "no Python 3.9 Paddle Serving tool: run scripts/bench_setup.sh to include the seed's server", flush=True
            )
        if args.only:
            import re

            specs = [(srv, ref) for srv, ref in specs if re.search(args.only, srv.name)]
        servers, agree = run_servers(specs, queries, corpus, fixed, reference, args)
    run_tag = {k: report.header()[k] for k in ("date", "commit")}
    data["servers"] = [dict({k: v for k, v in r.items() if k != "latencies_ms"}, run=run_tag) for r in servers]
    data["agreement"] = agree
    merge_previous(data, parts, args)
    data["verdict"] = verdict(data["servers"], data["quality"])
    write_report(data, servers, flops, args)


PART_KEYS = {"engines": ("engines",), "quality": ("quality",), "servers": ("servers", "agreement")}


def merge_previous(data, parts, args):
    """A run of some parts keeps the other parts of the previous results file, each with its own date and commit."""
    path = os.path.join(args.out, args.name + ".json")
    prev = json.load(open(path, encoding="utf-8")) if os.path.isfile(path) else {}
    now = {k: report.header()[k] for k in ("date", "commit", "command")}
    data["part_runs"] = {}
    if "servers" in parts and args.only and prev.get("servers"):
        # a run of some servers (--only) keeps the other servers' rows of the previous file, each with its run
        ran = {r["server"] for r in data["servers"]}
        old_run = prev.get("part_runs", {}).get("servers", {})
        kept = [dict(r, run=r.get("run") or {k: old_run.get(k) for k in ("date", "commit")}) for r in prev["servers"]]
        kept = [r for r in kept if r["server"] not in ran]
        order = list(dict.fromkeys([r["server"] for r in prev["servers"]] + [r["server"] for r in data["servers"]]))
        data["servers"] = sorted(kept + data["servers"], key=lambda r: (order.index(r["server"]), r["concurrency"]))
        data["agreement"] = {
            **{k: v for k, v in (prev.get("agreement") or {}).items() if k not in ran},
            **data["agreement"],
        }
    for part, keys in PART_KEYS.items():
        if part in parts or not prev.get(keys[0]):
            data["part_runs"][part] = now
            continue
        for k in keys:
            data[k] = prev.get(k)
        old = prev.get("part_runs", {}).get(part)
        data["part_runs"][part] = old or {k: prev.get(k) for k in ("date", "commit", "command")}


def verdict(servers, qual):
    """Our best against the best peer at the lowest and highest concurrency, on the 12-layer model and on each
    student (with its int8 dev AUC against the 12-layer fp32 one: the target allows a 0.01 drop)."""

    def best(pred, conc):
        rows = [r for r in servers if pred(r["server"]) and r["concurrency"] == conc]
        return max(rows, key=lambda r: r["pairs_per_s"]) if rows else None

    out = {}
    levels = sorted({r["concurrency"] for r in servers})
    if not levels:
        return out
    students = sorted({r["server"].split(" student")[0][len("ours ") :] for r in servers if " student " in r["server"]})
    base_auc = (qual.get("12-layer") or {}).get("paddle", {}).get("dev")
    for conc in (levels[0], levels[-1]):
        peer = best(lambda n: not n.startswith("ours"), conc)
        mine = best(lambda n: n.startswith("ours") and "student" not in n, conc)
        if peer and mine:
            out[f"ours_vs_best_peer_at_{conc}"] = {
                "ours": mine["server"],
                "peer": peer["server"],
                "ratio": round(mine["pairs_per_s"] / peer["pairs_per_s"], 2),
            }
        for layers in students:
            student = best(lambda n: n.startswith(f"ours {layers} student"), conc)
            if not (peer and student):
                continue
            row = {
                "ours": student["server"],
                "peer": peer["server"],
                "ratio": round(student["pairs_per_s"] / peer["pairs_per_s"], 2),
            }
            auc_ = (qual.get(f"{layers} student") or {}).get("onnxruntime-int8", {}).get("dev")
            if auc_ is not None and base_auc is not None:
                row["dev_auc_change_vs_12_layer"] = round(auc_ - base_auc, 4)
            out[f"{layers}_student_vs_best_peer_at_{conc}"] = row
    return out


def write_report(data, latencies, flops, args):
    engines, qual, servers, agree = data["engines"], data["quality"], data["servers"], data["agreement"]
    runs = {tuple(v.values()) for v in data["part_runs"].values()}
    body = ""
    if len(runs) > 1:
        body += (
            "Parts come from different runs:\n\n"
            + "\n".join(
                f"- {part}: {v['date']} (commit {v['commit']}), `{v['command']}`"
                for part, v in data["part_runs"].items()
            )
            + "\n\n"
        )
    if engines:
        body += (
            f"## (a) engines: batch {args.batch_size}, {args.n_pairs} real dev pairs, {args.threads} threads, "
            f"median of {args.repeats} runs\n\n"
        )
        st = next((e["median"] for e in engines if e["backend"] == "sentence-transformers"), None)
        body += report.table(
            [
                "model",
                "backend",
                "shipped",
                "pairs/s",
                "runs",
                "vs sentence-transformers",
                "max |prob diff| vs fp32",
                "GFLOP/pair",
                "share of peak",
            ],
            [
                (
                    e["model"],
                    e["backend"],
                    "yes" if e.get("shipped") else "no",
                    e["median"],
                    e["runs"],
                    f"{e['median'] / st:.2f}x" if st else "-",
                    f"{e['max_abs_prob_diff_vs_paddle_fp32']:.1e}",
                    e.get("gflop_per_pair", round(flops.get(e["model"], 0) / 1e9, 3)),
                    f"{e['peak_fraction']:.1%} of {e['precision']}",
                )
                for e in engines
            ],
        )
        body += (
            "\n\nShare of peak = FLOPs per pair (from the real token counts: projections, FFN, attention) x "
            "pairs/s / the 2 cores' peak for that precision (fp32 about 190 GFLOP/s, bf16 380, int8 VNNI 750 "
            "GOP/s). ONNX variants not shipped (benchmarks/onnx_variants.py) are kept out of the product "
            "unless they beat the shipped backend of their precision.\n\n"
        )
    if qual:
        body += "## (b) quality per backend (AUC; unseen = the query-disjoint holdout)\n\n"
        rows = []
        for model, per in qual.items():
            base = per.get("paddle")
            for b, q in per.items():
                rows.append(
                    (
                        model,
                        b,
                        q["dev"],
                        q["unseen"],
                        f"{q['dev'] - base['dev']:+.4f}" if base else "-",
                        f"{q['unseen'] - base['unseen']:+.4f}" if base else "-",
                    )
                )
        body += report.table(["model", "backend", "dev AUC", "unseen AUC", "dev vs fp32", "unseen vs fp32"], rows)
        body += "\n\nONNX Runtime fp32 gives Paddle fp32's scores (max |prob diff| in (a)), so its AUC is the same.\n\n"
    if servers:
        body += (
            f"## (c) servers side by side: 1 query x {args.titles} titles per request, {args.duration:.0f} s per "
            f"level after {args.warmup:.0f} s warm-up, {args.threads} threads each, one server at a time, "
            f"{args.rounds} interleaved round(s): the median round is shown, pairs/s of every round beside it. "
            f"Our ONNX Runtime servers run {args.replicas} engine sessions of {max(1, args.threads // args.replicas)} "
            f"thread(s) side by side (replicas: {args.replicas}) unless named '1 session'; our Paddle Inference "
            f"servers one predictor of {args.threads} threads.\n\n"
        )
        body += report.table(
            [
                "server",
                "clients",
                "requests",
                "pairs/s",
                "rounds",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "peak RSS MB",
                "run",
            ],
            [
                (
                    r["server"],
                    r["concurrency"],
                    r["requests"],
                    r["pairs_per_s"],
                    r.get("rounds_pairs_per_s", [r["pairs_per_s"]]),
                    r["p50_ms"],
                    r["p95_ms"],
                    r["p99_ms"],
                    r["errors"],
                    r["rss_mb"],
                    f"{(r.get('run') or {}).get('date', '?')[:10]} {(r.get('run') or {}).get('commit', '?')}",
                )
                for r in servers
            ],
        )
        body += (
            "\n\nScore agreement with our Paddle fp32 scores of the same model (10 fixed requests of 20 titles):\n\n"
        )
        body += report.table(
            ["server", "max |score diff|", "same top-5 order"],
            [(k, f"{v['max_abs_score_diff']:.1e}", v["same_top5_order"]) for k, v in agree.items()],
        )
        body += "\n\n"
        for k, v in data["verdict"].items():
            auc_note = (
                f" (dev AUC {v['dev_auc_change_vs_12_layer']:+.4f} vs the 12-layer model)"
                if "dev_auc_change_vs_12_layer" in v
                else ""
            )
            body += f"- {k.replace('_', ' ')}: {v['ours']} / {v['peer']} = **{v['ratio']}x**{auc_note}\n"
        body += f"\n![throughput]({args.name}_throughput.png) ![latency]({args.name}_latency.png)\n"
    report.write(args.out, args.name, data, body)
    if latencies:  # only a run of the servers part has them
        plots(servers, latencies, args)


def plots(servers, latencies, args):
    """Throughput of every server row in the results; latency CDFs of the servers measured in this run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["server"] for r in servers))
    plt.figure(figsize=(7, 5))
    for i, n in enumerate(names):
        rows = [r for r in servers if r["server"] == n]
        plt.plot(
            [r["concurrency"] for r in rows],
            [r["pairs_per_s"] for r in rows],
            "o-" if n.startswith("ours") else "s--",
            color=plt.cm.tab20(i % 20),
            label=n,
        )
    plt.xscale("log", base=2)
    plt.xlabel("concurrent clients")
    plt.ylabel("pairs/s")
    plt.legend(fontsize=7)
    plt.title(f"rerank throughput, 1 query x {args.titles} titles, 2 cores")
    plt.tight_layout()
    plt.savefig(os.path.join(args.out, args.name + "_throughput.png"), dpi=110)
    if not latencies:
        return
    levels = sorted({r["concurrency"] for r in servers})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, conc in zip(axes, (levels[0], levels[-1])):
        for r in latencies:
            if r["concurrency"] == conc and r["latencies_ms"]:
                x = np.sort(r["latencies_ms"])
                ax.plot(x, np.arange(1, len(x) + 1) / len(x), label=r["server"])
        ax.set_xscale("log")
        ax.set_xlabel("request latency (ms)")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"latency CDF, {conc} client(s)")
        ax.legend(fontsize=6)
    plt.tight_layout()
    plt.savefig(os.path.join(args.out, args.name + "_latency.png"), dpi=110)


if __name__ == "__main__":
    main()

"""Training speed of the pairwise ranker on multilingual-e5-small: Paddle settings vs PyTorch.

    python benchmarks/training_speed.py [--repeats 3 --steps 3]

Every run trains the same architecture (BERT 12 layers x 384, mean pooling, Linear -> sigmoid,
margin ranking loss, AdamW) on the same batches: 16 real KUAKE-QTR triples = 32 (query, title)
pairs per step, padded/truncated to 48 tokens (the shape of DESIGN.md's first measurement). Each
setting runs in a fresh process; the figure is the median over repeats of pairs/s (fwd + bwd +
optimizer step). Paddle's CPU kernels use Intel MKL, which on AMD CPUs picks a slow generic
path unless MKL_DEBUG_CPU_TYPE=5 (set by core/__init__.py); both are measured. A last Paddle row
uses the real pipeline input: batches padded only to their longest row (dynamic padding), which is
what train_pairwise.py does.
PyTorch (torch 2.13 CPU + transformers) runs in .venv-bench (scripts/bench_setup.sh).
Writes benchmarks/results/training_speed.{md,json}.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLOW_MKL = {"MKL_DEBUG_CPU_TYPE": "0"}  # MKL's default dispatch (its generic path on AMD CPUs)
FAST = {"OMP_NUM_THREADS": "2", "MKL_DEBUG_CPU_TYPE": "5"}
SETTINGS = [
    # name, env, options
    ("paddle, threads unset, MKL default dispatch", dict(SLOW_MKL), {}),
    ("paddle, OMP_NUM_THREADS=2, MKL default dispatch", dict(SLOW_MKL, OMP_NUM_THREADS="2"), {}),
    ("paddle, OMP_NUM_THREADS=2, MKL_DEBUG_CPU_TYPE=5", FAST, {}),
    ("paddle, OMP_NUM_THREADS=2, MKL_DEBUG_CPU_TYPE=5, to_static", FAST, {"to_static": True}),
    ("paddle, OMP_NUM_THREADS=2, MKL_DEBUG_CPU_TYPE=5, dynamic padding", FAST, {"dynamic": True}),
]


def make_batches(args, path):
    from core.backbone import load_tokenizer
    from core.data import PairEncoder, pad, read_pairwise_train

    tok = load_tokenizer("multilingual-e5-small")
    rows = read_pairwise_train(os.path.join(args.data_dir, "sort/train_pairwise.csv"))
    rng = np.random.RandomState(0)
    enc = PairEncoder(tok, args.seq_len)
    fixed, dynamic = {}, {}
    for b in range(args.steps):
        sel = [rows[i] for i in rng.choice(len(rows), args.triples, replace=False)]
        pairs = [(r["query"], r["title"]) for r in sel] + [(r["query"], r["neg_title"]) for r in sel]
        e = enc.many(pairs)
        ids = [x[0] for x in e]
        dyn = pad(ids, tok.pad_token_id)
        full = np.full((len(ids), args.seq_len), tok.pad_token_id, dtype=np.int64)
        for i, x in enumerate(ids):
            # fill to the full length with real tokens (repeat the pair) so every row has seq_len tokens
            reps = (x * (args.seq_len // len(x) + 1))[: args.seq_len]
            full[i] = reps
        fixed[f"ids{b}"], fixed[f"mask{b}"] = full, np.ones_like(full)
        dynamic[f"ids{b}"], dynamic[f"mask{b}"] = dyn, (dyn != tok.pad_token_id).astype(np.int64)
    np.savez(path + ".fixed.npz", **fixed)
    np.savez(path + ".dynamic.npz", **dynamic)
    return tok.pad_token_id


def worker(spec_file):
    """Runs inside a fresh process: time Paddle training steps with the given options."""
    import paddle

    from ernie_matching.common import build

    spec = json.load(open(spec_file))
    paddle.set_device("cpu")
    paddle.seed(0)
    model, tok, _, _ = build("multilingual-e5-small", pooling="mean")
    model.train()
    decay = [p.name for n, p in model.named_parameters() if not any(nd in n for nd in ("bias", "norm"))]
    opt = paddle.optimizer.AdamW(
        learning_rate=1e-5, parameters=model.parameters(), weight_decay=0.01, apply_decay_param_fun=lambda x: x in decay
    )
    data = np.load(spec["batches"])
    batches = [paddle.to_tensor(data[f"ids{i}"]) for i in range(spec["n_batches"])]
    net = model
    if spec.get("to_static"):
        net = paddle.jit.to_static(model, full_graph=True)

    def step(ids):
        half = ids.shape[0] // 2
        zeros = paddle.zeros_like(ids[:half])
        loss = net(ids[:half], ids[half:], zeros, zeros)
        loss.backward()
        opt.step()
        opt.clear_grad()
        return float(loss)

    step(batches[0])  # warm-up (and graph capture for to_static)
    runs = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        n = 0
        for ids in batches:
            step(ids)
            n += ids.shape[0]
        runs.append(n / (time.perf_counter() - t0))
    json.dump({"pairs_per_s": statistics.median(runs), "runs": runs}, open(spec["out"], "w"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    p.add_argument("--work_dir", default=os.path.join(ROOT, "work_dirs", "training_speed"))
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    p.add_argument("--triples", type=int, default=16)
    p.add_argument("--seq_len", type=int, default=48)
    p.add_argument("--steps", type=int, default=3, help="steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker)
    import report

    os.makedirs(args.work_dir, exist_ok=True)
    base = os.path.join(args.work_dir, "batches")
    pad_id = make_batches(args, base)
    results = {}
    for name, env, opts in SETTINGS:
        out = os.path.join(args.work_dir, "r.json")
        spec = {
            "batches": base + (".dynamic.npz" if opts.get("dynamic") else ".fixed.npz"),
            "n_batches": args.steps,
            "repeats": args.repeats,
            "out": out,
            **opts,
        }
        json.dump(spec, open(os.path.join(args.work_dir, "spec.json"), "w"))
        e = {
            k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_DEBUG_CPU_TYPE")
        }
        e.update(env, PYTHONPATH=ROOT, GLOG_minloglevel="2")
        r = subprocess.run(
            [sys.executable, __file__, "--worker", os.path.join(args.work_dir, "spec.json")],
            env=e,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-1500:]}", flush=True)
            results[name] = {"error": r.stderr.strip().splitlines()[-1][:300] if r.stderr.strip() else "failed"}
            continue
        results[name] = json.load(open(out))
        print(f"{name}: {results[name]['pairs_per_s']:.2f} pairs/s", flush=True)
    py = os.path.join(ROOT, ".venv-bench", "bin", "python")
    from core.backbone import resolve

    cfg = json.load(open(os.path.join(resolve("multilingual-e5-small"), "config.json")))
    cfg["pad_token_id"] = pad_id
    spec = {"config": cfg, "threads": 2, "n_batches": args.steps, "repeats": args.repeats}
    json.dump(spec, open(os.path.join(args.work_dir, "torch_spec.json"), "w"))
    out = os.path.join(args.work_dir, "torch.json")
    e = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    subprocess.run(
        [
            py,
            os.path.join(ROOT, "benchmarks", "pytorch_reference.py"),
            "train",
            os.path.join(args.work_dir, "torch_spec.json"),
            base + ".fixed.npz",
            out,
        ],
        check=True,
        env=e,
    )
    torch_r = json.load(open(out))
    print(f"pytorch: {torch_r['pairs_per_s']:.2f} pairs/s", flush=True)
    comparable = {k: v for k, v in results.items() if "pairs_per_s" in v and "dynamic" not in k}
    best_name = max(comparable, key=lambda k: comparable[k]["pairs_per_s"])
    best = comparable[best_name]["pairs_per_s"]
    data = {
        "paddle_pairs_per_s": round(best, 2),
        "pytorch_pairs_per_s": round(torch_r["pairs_per_s"], 2),
        "ratio": round(best / torch_r["pairs_per_s"], 3),
        "best_paddle_setting": best_name,
        "settings": {
            k: (
                {"pairs_per_s": round(v["pairs_per_s"], 2), "runs": [round(x, 2) for x in v["runs"]]}
                if "pairs_per_s" in v
                else v
            )
            for k, v in results.items()
        },
        "pytorch": {
            "pairs_per_s": round(torch_r["pairs_per_s"], 2),
            "runs": [round(x, 2) for x in torch_r["runs"]],
            "version": torch_r["torch"],
            "threads": 2,
        },
        "shape": {
            "pairs_per_step": 2 * args.triples,
            "seq_len": args.seq_len,
            "steps_per_repeat": args.steps,
            "repeats": args.repeats,
            "model": "multilingual-e5-small 12x384, vocab 101,879",
        },
        "target_ratio": 0.6,
    }
    rows = [
        (
            k,
            v.get("pairs_per_s", "failed") if "pairs_per_s" not in v else round(v["pairs_per_s"], 2),
            round(v["pairs_per_s"] / torch_r["pairs_per_s"], 2) if "pairs_per_s" in v else "-",
        )
        for k, v in results.items()
    ]
    rows.append((f"pytorch {torch_r['torch']}, 2 threads", round(torch_r["pairs_per_s"], 2), 1.0))
    body = (
        f"Pairwise training step (fwd + bwd + AdamW), {2 * args.triples} pairs x {args.seq_len} tokens, "
        f"median of {args.repeats} repeats of {args.steps} steps, each setting in a fresh process.\n\n"
    )
    body += report.table(["setting", "train pairs/s", "vs PyTorch"], rows)
    body += (
        f"\n\nBest comparable Paddle setting: {best_name}, ratio **{data['ratio']}** (target 0.6). "
        "The dynamic-padding row is not comparable (shorter real batches); it shows what the trainer "
        "gains from padding each batch to its longest row.\n"
    )
    report.write(args.out, "training_speed", data, body)


if __name__ == "__main__":
    main()

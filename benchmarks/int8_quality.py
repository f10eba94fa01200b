"""What int8 costs in quality: AUC of the ONNX int8 export against fp32, on dev and on unseen queries.

    python benchmarks/int8_quality.py --export work_dirs/ranking_quality/cross_encoder_export \
        work_dirs/ranking_quality/pairwise_export

For each exported ranker: fp32 ONNX, the int8 file export_model.py --int8 writes (core.inference:
per-channel dynamic int8 of every MatMul weight and embedding table), and alternatives (MatMul only,
per-tensor weights, the FFN output layers kept fp32), each scored on data/sort/dev_pairwise.csv and
the query-disjoint data/sort/holdout_pairwise.csv. Writes benchmarks/results/int8_quality.{md,json,png}.
"""

import argparse
import logging
import os
import shutil
import tempfile

import report

from core.data import read_labeled_pairs
from core.engine import RankerEngine
from core.inference import INT8_OPS, ONNX_FILE, ONNX_INT8_FILE, quantize_onnx_int8, to_onnx
from core.metrics import auc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def alternatives(folded):
    """Other dynamic-quantization settings of the same folded graph: {name: quantize_dynamic kwargs}."""
    import onnx
    from onnxruntime.quantization import QuantType

    m = onnx.load(folded)
    shapes = {i.name: list(i.dims) for i in m.graph.initializer}
    weights = {n.name: shapes.get(n.input[1]) for n in m.graph.node if n.op_type == "MatMul" and len(n.input) > 1}
    # weights [intermediate, hidden]: the FFN output projection of each layer
    ffn_out = [name for name, dims in weights.items() if dims and len(dims) == 2 and dims[0] > dims[1]]
    return {
        "MatMul only, per-channel": dict(op_types_to_quantize=["MatMul"], per_channel=True),
        "MatMul only, per-tensor": dict(op_types_to_quantize=["MatMul"], per_channel=False),
        "MatMul per-channel, FFN output fp32": dict(
            op_types_to_quantize=["MatMul"], per_channel=True, nodes_to_exclude=ffn_out
        ),
    }, QuantType.QInt8


def fold(src, dst):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = dst
    so.log_severity_level = 3
    ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", nargs="+", required=True, help="exported ranker directories (export_model.py)")
    p.add_argument("--data_dir", default=os.path.join(ROOT, "data"))
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args()
    logging.disable(logging.INFO)  # the quantizer's per-tensor notes
    from onnxruntime.quantization import quantize_dynamic

    sets = {}
    for name in ("dev", "holdout"):
        rows = read_labeled_pairs(os.path.join(args.data_dir, f"sort/{name}_pairwise.csv"))
        sets[name] = ([(r["query"], r["title"]) for r in rows], [r["label"] for r in rows])
    results = {}
    for export in args.export:
        model = os.path.basename(os.path.normpath(export))
        work = tempfile.mkdtemp()
        src = os.path.join(work, "fp32")
        shutil.copytree(export, src)
        if not os.path.isfile(os.path.join(src, ONNX_FILE)):
            to_onnx(src)
        fp32 = RankerEngine(src, backend="onnxruntime", max_seq_length=args.max_seq_length, cpu_threads=args.threads)
        encoded = {n: fp32.encode(pairs) for n, (pairs, _) in sets.items()}
        base = {n: auc(sets[n][1], fp32.score_encoded(encoded[n])) for n in sets}
        fp32_size = os.path.getsize(os.path.join(src, ONNX_FILE))
        rows = {"fp32": {"dev_auc": round(base["dev"], 4), "unseen_auc": round(base["holdout"], 4), "size": 1.0}}
        folded = os.path.join(work, "folded.onnx")
        fold(os.path.join(src, ONNX_FILE), folded)
        alts, weight_type = alternatives(folded)
        variants = {f"shipped: {'+'.join(INT8_OPS)}, per-channel (export --int8)": None, **alts}
        for label, kw in variants.items():
            d = os.path.join(work, f"v{len(rows)}")
            shutil.copytree(src, d, ignore=shutil.ignore_patterns("*.onnx"))
            shutil.copy(os.path.join(src, ONNX_FILE), d)
            if kw is None:
                quantize_onnx_int8(os.path.join(src, ONNX_FILE), os.path.join(d, ONNX_INT8_FILE))
            else:
                quantize_dynamic(folded, os.path.join(d, ONNX_INT8_FILE), weight_type=weight_type, **kw)
            eng = RankerEngine(
                d, backend="onnxruntime-int8", max_seq_length=args.max_seq_length, cpu_threads=args.threads
            )
            a = {n: auc(sets[n][1], eng.score_encoded(encoded[n])) for n in sets}
            rows[label] = {
                "dev_auc": round(a["dev"], 4),
                "unseen_auc": round(a["holdout"], 4),
                "dev_delta": round(a["dev"] - base["dev"], 4),
                "unseen_delta": round(a["holdout"] - base["holdout"], 4),
                "size": round(os.path.getsize(os.path.join(d, ONNX_INT8_FILE)) / fp32_size, 3),
            }
            print(model, label, rows[label], flush=True)
        results[model] = rows
        shutil.rmtree(work, ignore_errors=True)
    body = ""
    for model, rows in results.items():
        body += f"## {model}\n\n"
        body += report.table(
            ["ONNX file", "dev AUC", "change", "unseen AUC", "change", "size vs fp32"],
            [
                (k, r["dev_auc"], r.get("dev_delta", "-"), r["unseen_auc"], r.get("unseen_delta", "-"), r["size"])
                for k, r in rows.items()
            ],
        )
        body += "\n\n"
    body += (
        f"dev: {len(sets['dev'][0])} pairs; unseen: the query-disjoint holdout, {len(sets['holdout'][0])} pairs. "
        "Target: the int8 file within 0.005 AUC of fp32 on both. Speed: benchmarks/results/serving.md.\n\n"
        "![AUC change](int8_quality.png)\n"
    )
    report.write(args.out, "int8_quality", {"results": results, "target_max_auc_drop": 0.005}, body)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 3.6), squeeze=False)
    for ax, (model, rows) in zip(axes[0], results.items()):
        names = [k for k in rows if k != "fp32"]
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [rows[k]["dev_delta"] for k in names], 0.4, label="dev")
        ax.bar([i + 0.2 for i in x], [rows[k]["unseen_delta"] for k in names], 0.4, label="unseen queries")
        ax.axhline(-0.005, color="r", ls=":", lw=1)
        ax.set_xticks(list(x))
        ax.set_xticklabels([n.split(":")[0] if n.startswith("shipped") else n for n in names], rotation=15, fontsize=7)
        ax.set_title(f"{model}: AUC change int8 - fp32")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "int8_quality.png"), dpi=110)


if __name__ == "__main__":
    main()

"""Score (query, title) pairs with an exported ranker: Paddle Inference or ONNX Runtime.

    python deploy/python/predict.py --model_dir output/pairwise --input_file data/sort/test_pairwise.csv \
        --backend paddle|paddle-bf16|onnxruntime|onnxruntime-int8 --cpu_threads 2 [--enable_mkldnn] [--benchmark]
--output_file FILE writes every pair's score as query\ttitle\tscore rows instead of printing them, with a
progress bar: the format of mine_negatives.py's OUTPUT.scores.tsv, so a ranker's scores of mined pairs can be
train_batch_neg.py's --teacher_scores_file.
GPU (PaddleNLP's flags; not testable on CPU machines): --device gpu [--use_tensorrt --precision fp16].
The tokenizer saved beside the graph by export_model.py is used unless --model_name_or_path is given.
Pairs longer than --max_seq_length are truncated (longest text first).
"""

import argparse
import time

from core.cli import run_cli
from core.data import read_pairs
from core.engine import RankerEngine
from core.inference import BACKENDS


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="directory with inference.json/.pdiparams (and .onnx)")
    p.add_argument("--input_file", required=True, help="query\\ttitle[\\t...] lines")
    p.add_argument("--model_name_or_path", default=None, help="tokenizer (default: the one beside the model)")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--backend", choices=BACKENDS, default="paddle")
    p.add_argument("--use_tensorrt", action="store_true", help="GPU only: run through TensorRT")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32", help="TensorRT precision")
    p.add_argument("--cpu_threads", type=int, default=2)
    p.add_argument("--enable_mkldnn", action="store_true")
    p.add_argument("--replicas", type=int, default=1, help="engine copies scoring batches side by side")
    p.add_argument("--limit", type=int, default=0, help="score only the first N pairs")
    p.add_argument("--output_file", default=None, help="write query\\ttitle\\tscore rows here (not printed)")
    p.add_argument("--benchmark", action="store_true", help="print throughput")
    args = p.parse_args(argv)
    engine = RankerEngine(
        args.model_dir,
        backend=args.backend,
        max_seq_length=args.max_seq_length,
        cpu_threads=args.cpu_threads,
        device=args.device,
        enable_mkldnn=args.enable_mkldnn,
        use_tensorrt=args.use_tensorrt,
        precision=args.precision,
        batch_size=args.batch_size,
        replicas=args.replicas,
    )
    if args.model_name_or_path:
        from core.backbone import load_tokenizer
        from core.data import PairEncoder

        engine.encoder = PairEncoder(load_tokenizer(args.model_name_or_path), args.max_seq_length)
    rows = read_pairs(args.input_file)
    if args.limit:
        rows = rows[: args.limit]
    pairs = [(r["query"], r["title"]) for r in rows]
    start = time.time()
    if args.output_file:
        probs = engine.score_to_file(pairs, args.output_file)
    else:
        probs = engine.score(pairs)
    elapsed = time.time() - start
    results = [{"query": r["query"], "title": r["title"], "pred_prob": round(float(p), 5)} for r, p in zip(rows, probs)]
    if args.output_file:
        print(f"{len(results)} pairs scored -> {args.output_file}")
    else:
        for r in results:
            print(r)
    if args.benchmark:
        print(f"{len(results)} pairs in {elapsed:.2f}s: {len(results) / elapsed:.1f} pairs/s ({args.backend})")
    return results


if __name__ == "__main__":
    run_cli(main)

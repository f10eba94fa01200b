"""Score (query, title) pairs with an exported ranker through Paddle Inference.

    python deploy/python/predict.py --model_dir output/pairwise --input_file data/sort/dev_pairwise.csv
The tokenizer saved beside the graph by export_model.py is used unless --model_name_or_path is given.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402

from core.backbone import load_tokenizer  # noqa: E402
from core.data import PairEncoder, pad, read_pairs  # noqa: E402
from core.inference import PaddlePredictor  # noqa: E402
from core.ranker import run_cli  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="directory with inference.json/.pdiparams")
    p.add_argument("--input_file", required=True, help="query\\ttitle[\\t...] lines")
    p.add_argument("--model_name_or_path", default=None, help="tokenizer (default: the one beside the model)")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--cpu_threads", type=int, default=2)
    p.add_argument("--enable_mkldnn", action="store_true")
    p.add_argument("--limit", type=int, default=0, help="score only the first N pairs")
    p.add_argument("--benchmark", action="store_true", help="print throughput")
    args = p.parse_args(argv)
    tokenizer = load_tokenizer(args.model_name_or_path or args.model_dir)
    predictor = PaddlePredictor(args.model_dir, device=args.device, cpu_threads=args.cpu_threads,
                                enable_mkldnn=args.enable_mkldnn)
    rows = read_pairs(args.input_file)
    if args.limit:
        rows = rows[: args.limit]
    enc = PairEncoder(tokenizer, args.max_seq_length)
    start, results = time.time(), []
    for i in range(0, len(rows), args.batch_size):
        batch = rows[i : i + args.batch_size]
        e = [enc(r["query"], r["title"]) for r in batch]
        probs = predictor.run(input_ids=pad([x[0] for x in e], tokenizer.pad_token_id or 0),
                              token_type_ids=pad([x[1] for x in e]))
        for r, prob in zip(batch, np.asarray(probs).reshape(-1)):
            results.append({"query": r["query"], "title": r["title"], "pred_prob": round(float(prob), 5)})
    elapsed = time.time() - start
    for r in results:
        print(r)
    if args.benchmark:
        print(f"{len(results)} pairs in {elapsed:.2f}s: {len(results) / elapsed:.1f} pairs/s")
    return results


if __name__ == "__main__":
    run_cli(main)

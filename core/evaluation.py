"""Evaluating a ranker on a labeled pair file: AUC, and NDCG@k / MRR per query."""

import argparse
import json
from collections.abc import Callable, Sequence

from .data import read_labeled_pairs
from .inference import BACKENDS, default_threads, set_threads
from .metrics import auc, mrr, ndcg_at_k
from .scoring import score_pairs
from .trainer import init_device


def add_eval_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--init_from_ckpt",
        "--params_path",
        dest="init_from_ckpt",
        help="checkpoint dir or its model_state.pdparams (dynamic graph)",
    )
    src.add_argument("--model_dir", help="an exported model directory (static graph, faster)")
    p.add_argument(
        "--backend",
        default="paddle",
        choices=BACKENDS,
        help="engine for --model_dir",
    )
    p.add_argument("--test_file", required=True, help="query\\ttitle\\tlabel (label 0/1)")
    p.add_argument(
        "--model_name_or_path",
        default="multilingual-e5-small",
        help="backbone, used only when the checkpoint has no config/tokenizer of its own",
    )
    p.add_argument("--max_seq_length", "--max_seq_len", dest="max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--ndcg_k", type=int, default=3, help="k of the per-query NDCG@k")
    p.add_argument("--cpu_threads", type=int, default=0, help="threads for CPU kernels (0: environment)")
    p.add_argument("--output_file", default=None, help="also write the metrics as JSON here")


def evaluate_file(model: object, tokenizer: object, args: argparse.Namespace, score_fn: Callable | None = None) -> dict:
    """Metrics of a dynamic model (model, tokenizer) or of any `score_fn(pairs) -> probabilities`."""
    set_threads(args.cpu_threads)
    init_device(args.device)
    rows = read_labeled_pairs(args.test_file)
    pairs = [(r["query"], r["title"]) for r in rows]
    if score_fn is not None:
        probs = score_fn(pairs)
    else:
        model.eval()
        probs = score_pairs(model.predict, tokenizer, pairs, args.max_seq_length, args.batch_size)
    labels = [r["label"] for r in rows]
    queries = [r["query"] for r in rows]
    result = {
        "auc": auc(labels, probs),
        f"ndcg@{args.ndcg_k}": ndcg_at_k(queries, labels, probs, args.ndcg_k),
        "mrr": mrr(queries, labels, probs),
        "pairs": len(rows),
        "queries": len(set(queries)),
    }
    print(
        "eval_dev auc:{:.4f}  ndcg@{}:{:.4f}  mrr:{:.4f}  ({} pairs, {} queries)".format(
            result["auc"], args.ndcg_k, result[f"ndcg@{args.ndcg_k}"], result["mrr"], result["pairs"], result["queries"]
        )
    )
    if args.output_file:
        with open(args.output_file, "w") as f:
            json.dump(result, f, indent=1)
    return result


def auc_evaluator(
    tokenizer: object, dev_rows: Sequence[dict], max_seq_length: int, batch_size: int
) -> Callable[[object], float]:
    """evaluate(model) -> dev AUC, for the trainer's periodic evaluation."""
    pairs = [(r["query"], r["title"]) for r in dev_rows]
    labels = [r["label"] for r in dev_rows]

    def evaluate(model):
        model.eval()
        return auc(labels, score_pairs(model.predict, tokenizer, pairs, max_seq_length, batch_size))

    return evaluate


def evaluate_main(build: Callable, description: str, argv: list[str] | None = None) -> dict:
    """evaluate.py of either ranker: a checkpoint (dynamic graph) or an exported model directory."""
    import argparse

    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_eval_args(p)
    args = p.parse_args(argv)
    if args.model_dir:
        from core.engine import RankerEngine

        threads = default_threads(args.cpu_threads)
        engine = RankerEngine(
            args.model_dir,
            backend=args.backend,
            max_seq_length=args.max_seq_length,
            cpu_threads=threads,
            device=args.device,
            batch_size=args.batch_size,
        )
        return evaluate_file(None, None, args, score_fn=engine.score)
    model, tokenizer, _, _ = build(args.model_name_or_path, params_path=args.init_from_ckpt)
    return evaluate_file(model, tokenizer, args)

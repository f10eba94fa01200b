"""The predict entry points shared by both rankers: score a file of pairs, print and write them."""

import argparse
import os

from .inference import set_threads
from .scoring import score_pairs
from .trainer import init_device


def add_predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--params_path",
        "--init_from_ckpt",
        dest="params_path",
        required=True,
        help="checkpoint dir or its model_state.pdparams",
    )
    p.add_argument(
        "--input_file",
        "--test_file",
        "--test_set",
        dest="input_file",
        required=True,
        help="query\\ttitle[\\tscore] lines",
    )
    p.add_argument(
        "--model_name_or_path",
        default="multilingual-e5-small",
        help="backbone, used only when the checkpoint has no config/tokenizer of its own",
    )
    p.add_argument("--max_seq_length", "--max_seq_len", dest="max_seq_length", type=int, default=128)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--cpu_threads", type=int, default=0, help="threads for CPU kernels (0: environment)")
    p.add_argument("--output_file", default=None, help="write query\\ttitle\\tpred_prob lines here")


def predict_file(
    model: object,
    tokenizer: object,
    args: argparse.Namespace,
    keys: tuple[str, str] = ("query", "title"),
    sort: bool = False,
    topk: int | None = None,
    show: int = 20,
) -> list[dict]:
    """Score every pair of args.input_file; print `show` of them as dicts and write all to --output_file."""
    from .data import read_pairs

    set_threads(args.cpu_threads)
    init_device(args.device)
    rows = read_pairs(args.input_file)
    model.eval()
    probs = score_pairs(
        model.predict, tokenizer, [(r["query"], r["title"]) for r in rows], args.max_seq_length, args.batch_size
    )
    results = [{keys[0]: r["query"], keys[1]: r["title"], "pred_prob": float(p)} for r, p in zip(rows, probs)]
    if sort:
        results.sort(key=lambda r: -r["pred_prob"])
    if topk:
        results = results[:topk]
    for r in results[:show]:
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})
    if len(results) > show:
        print(f"... {len(results)} pairs scored")
    if args.output_file:
        os.makedirs(os.path.dirname(os.path.abspath(args.output_file)), exist_ok=True)
        with open(args.output_file, "w", encoding="utf-8") as f:
            for r in results:
                f.write(f"{r[keys[0]]}\t{r[keys[1]]}\t{r['pred_prob']:.6f}\n")
        print(f"wrote {args.output_file}")
    return results

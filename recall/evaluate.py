"""Recall@1/5/10/20/50 and MRR@10 of a recall result file against the relevant pairs.

    python recall/evaluate.py --similar_text_pair_file data/recall/dev.csv \
        --recall_result_file recall_result_dir/recall_result.txt
Every query of the pair file counts (one without results scores 0); a query may have several
relevant titles, and recall@K is the share of them found in its top K.
"""

import argparse
import json

from core.cli import run_cli


def read_recall_results(path):
    """query\\ttext\\tsimilarity lines -> {query: [texts in file order]}."""
    from core.data import read_tsv

    out = {}
    for r in read_tsv(path, ("query", "text", "similarity"), float_columns=("similarity",)):
        out.setdefault(r["query"], []).append(r["text"])
    return out


def main(argv=None):
    from recall.training import read_relevant, recall_report

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--similar_text_pair_file", required=True, help="query\\ttitle relevant pairs")
    p.add_argument("--recall_result_file", required=True, help="recall/run_recall.py output")
    p.add_argument("--recall_num", type=int, default=50, help="cut each result list at this length")
    p.add_argument("--output", default=None, help="also write the metrics as JSON here")
    args = p.parse_args(argv)
    queries, relevant = read_relevant(args.similar_text_pair_file)
    got = read_recall_results(args.recall_result_file)
    retrieved = [got.get(q, [])[: args.recall_num] for q in queries]
    missing = sum(1 for q in queries if q not in got)
    report = recall_report(retrieved, relevant)
    print(f"{len(queries)} queries ({missing} without results)")
    print("  ".join(f"{k}: {v:.4f}" for k, v in report.items()))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(dict(report, queries=len(queries)), f, indent=1)
    return report


if __name__ == "__main__":
    run_cli(main)

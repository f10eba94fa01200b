"""End-to-end search from the command line: recall top-K from Milvus, re-rank, print ranked results.

    python -m recall.search --encoder_dir output/recall_encoder --ranker_dir output/pairwise \
        --milvus_uri work_dirs/milvus.db --collection kuake_titles --query "感冒吃什么药" --top_k 10
Several --query flags (or --query_file, one per line) run one after another. --json prints JSON.
Without --ranker_dir the recall order is returned; --rerank picks how the ranker re-orders the recalled
titles (fused: reciprocal-rank fusion with the recall order; ranker: ranker score only).
A running server does the same at POST /search.
"""

import argparse
import json

from core.cli import run_cli
from core.inference import default_threads
from recall.build_index import add_engine_args, add_index_args


def format_results(query, results):
    lines = [f"query: {query}"]
    for r in results:
        score = "   -  " if r["rank_score"] is None else f"{r['rank_score']:.4f}"
        fused = f"  fused {r['fused_score']:.4f}" if r.get("fused_score") is not None else ""
        lines.append(f"  {r['rank']:>3}.{fused}  rank {score}  recall {r['recall_similarity']:.4f}  {r['text']}")
    return "\n".join(lines)


def main(argv=None):
    from core.engine import EncoderEngine, RankerEngine
    from core.index import MilvusIndex
    from core.search import DEFAULT_RERANK, RERANK_MODES, SearchPipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder_dir", required=True, help="exported recall encoder (the one that built the index)")
    p.add_argument("--ranker_dir", default=None, help="exported pairwise model or cross-encoder")
    p.add_argument("--query", action="append", default=[])
    p.add_argument("--query_file", default=None)
    p.add_argument("--top_k", type=int, default=10)
    p.add_argument("--recall_num", type=int, default=50, help="titles recalled before re-ranking")
    p.add_argument(
        "--rerank",
        default=DEFAULT_RERANK,
        choices=RERANK_MODES,
        help="score_fused (the default): w * minmax(recall similarity) + minmax(ranker score) over the recalled "
        "list; fused: reciprocal-rank fusion of the recall and ranker orders; ranker: ranker score only",
    )
    p.add_argument("--rrf_k", type=int, default=10, help="the k of the fusion, 1/(k + rank)")
    p.add_argument(
        "--recall_weight",
        type=float,
        default=1.0,
        help="the fusion's weight of the recall side: w/(k + rank), or w * minmax(similarity) for score_fused",
    )
    p.add_argument(
        "--lexical_weight",
        type=float,
        default=0.0,
        help="> 0: hybrid recall, cosine + w * BM25 / best BM25 (an index built with build_index.py --lexical)",
    )
    p.add_argument("--json", action="store_true")
    add_index_args(p)
    add_engine_args(p)
    args = p.parse_args(argv)
    queries = list(args.query)
    if args.query_file:
        from core.data import read_corpus

        queries += read_corpus(args.query_file)
    if not queries:
        p.error("give --query (repeatable) or --query_file")
    index = MilvusIndex(args.milvus_uri, args.collection, token=args.milvus_token)
    index.info()  # a missing index fails here, with how to build it
    threads = default_threads(args.cpu_threads)
    kw = dict(backend=args.backend, max_seq_length=args.max_seq_length, cpu_threads=threads, batch_size=args.batch_size)
    encoder = EncoderEngine(args.encoder_dir, **kw)
    ranker = RankerEngine(args.ranker_dir, **kw) if args.ranker_dir else None
    pipe = SearchPipeline(
        encoder,
        index,
        ranker,
        recall_num=args.recall_num,
        rerank=args.rerank,
        rrf_k=args.rrf_k,
        recall_weight=args.recall_weight,
        lexical_weight=args.lexical_weight,
    )
    out = []
    for q in queries:
        results = pipe.search(q, args.top_k)
        out.append({"query": q, "results": results})
        print(json.dumps(out[-1], ensure_ascii=False) if args.json else format_results(q, results), flush=True)
    index.close()
    return out


if __name__ == "__main__":
    run_cli(main)

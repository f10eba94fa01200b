"""PaddleNLP's run_system.py flow over the Pipeline gRPC protocol: embed, search Milvus, re-rank.

    python deploy/python/run_system.py --server 127.0.0.1:8089 --encoder_service recall \
        --ranker_service ernie_matching --milvus_uri http://127.0.0.1:19530 --query 中西方语言与文化的差异
1. the server's encoder service embeds the query (Pipeline request, value = the text);
2. this process searches Milvus (a Milvus server, or the Lite database the search server exposes
   on search.milvus_port) and writes recall_result.csv;
3. the server's ranker service scores (query, title) pairs; results ordered by the fusion of the recall
   similarities and ranker scores (--rerank score_fused, the default), of the recall and ranker orders
   (--rerank fused) or by the ranker's score (--rerank ranker, PaddleNLP's order) -> rank_result.csv.
--one_call sends the query to the server's "search" service instead (recall and re-rank in one request).
"""

import argparse
import csv
import json
import os
import time

from core.cli import run_cli
from core.search import DEFAULT_RERANK, RERANK_MODES
from deploy.python.rpc_client import PipelineRpcClient


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query_text", "text", "distance"])
        w.writerows(rows)


def run(clients, args, query, index=None):
    from core.errors import PipelineError

    encoder_client, ranker_client = clients
    if args.one_call:
        request = {"query": query, "top_k": args.top_k, "rerank": args.rerank}
        err, msg, value = ranker_client.call([json.dumps(request, ensure_ascii=False)], service=args.search_service)
        if err:
            raise PipelineError(f"search service: {msg}")
        return [(r["text"], r["recall_similarity"], r["rank_score"]) for r in json.loads(value[0])]
    t0 = time.perf_counter()
    err, msg, value = encoder_client.call([query], service=args.encoder_service)
    if err:
        raise PipelineError(f"encoder service '{args.encoder_service}': {msg}")
    emb = json.loads(value[0])
    t1 = time.perf_counter()
    hits = index.search(emb, args.recall_num)[0]
    t2 = time.perf_counter()
    write_csv(os.path.join(args.output_dir, "recall_result.csv"), [(query, h.text, h.similarity) for h in hits])
    err, msg, scores = ranker_client.predict([(query, h.text) for h in hits], service=args.ranker_service)
    if err:
        raise PipelineError(f"ranker service '{args.ranker_service}': {msg}")
    t3 = time.perf_counter()
    from core.search import rerank_order

    order = rerank_order(scores, args.rerank, args.rrf_k, args.recall_weight, [h.similarity for h in hits])[0]
    ranked = [(hits[i], scores[i]) for i in order]
    write_csv(os.path.join(args.output_dir, "rank_result.csv"), [(query, h.text, s) for h, s in ranked])
    print(
        f"feature extraction {1000 * (t1 - t0):.0f} ms, Milvus search {1000 * (t2 - t1):.0f} ms, "
        f"ranking {1000 * (t3 - t2):.0f} ms"
    )
    return [(h.text, h.similarity, s) for h, s in ranked[: args.top_k]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="127.0.0.1:8089", help="the search server's Pipeline gRPC address")
    p.add_argument("--encoder_server", default=None, help="a separate server for the encoder (PaddleNLP: :8080)")
    p.add_argument("--ranker_server", default=None, help="a separate server for the ranker")
    p.add_argument("--encoder_service", default="recall")
    p.add_argument("--ranker_service", default="ernie_matching")
    p.add_argument("--search_service", default="search")
    p.add_argument("--one_call", action="store_true", help="use the server's search service (one request)")
    p.add_argument("--milvus_uri", default="http://127.0.0.1:19530")
    p.add_argument("--milvus_token", default=None)
    p.add_argument("--collection", default="kuake_titles")
    p.add_argument("--recall_num", type=int, default=50)
    p.add_argument("--top_k", type=int, default=10)
    p.add_argument(
        "--rerank",
        default=DEFAULT_RERANK,
        choices=RERANK_MODES,
        help="score_fused (the default): w * minmax(recall similarity) + minmax(ranker score) over the recalled "
        "list; fused: reciprocal-rank fusion of the recall and ranker orders; ranker: ranker score only "
        "(PaddleNLP's order)",
    )
    p.add_argument("--rrf_k", type=int, default=10, help="the k of the fusion, 1/(k + rank)")
    p.add_argument(
        "--recall_weight",
        type=float,
        default=1.0,
        help="the fusion's weight of the recall side: w/(k + rank), or w * minmax(similarity) for score_fused",
    )
    p.add_argument("--output_dir", default=".", help="where recall_result.csv and rank_result.csv go")
    p.add_argument("--query", action="append", required=True)
    args = p.parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    clients = (
        PipelineRpcClient(args.encoder_server or args.server),
        PipelineRpcClient(args.ranker_server or args.server),
    )
    index = None
    if not args.one_call:
        from core.index import MilvusIndex

        index = MilvusIndex(args.milvus_uri, args.collection, token=args.milvus_token)
    out = {}
    import grpc

    from core.errors import PipelineError

    for q in args.query:
        try:
            ranked = run(clients, args, q, index)
        except grpc.RpcError as e:
            raise PipelineError(f"Pipeline gRPC call failed: {e.code().name} {e.details()}") from None
        out[q] = ranked
        print(f"query: {q}")
        for i, (text, sim, score) in enumerate(ranked, start=1):
            print(f"  {i:>3}. rank {score:.4f}  recall {sim:.4f}  {text}")
    return out


if __name__ == "__main__":
    run_cli(main)

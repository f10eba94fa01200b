"""Query a running search server end to end and print the ranked results.

    python deploy/python/search_client.py --http http://127.0.0.1:8090 --query 感冒吃什么药 --top_k 5
    python deploy/python/search_client.py --grpc 127.0.0.1:8089 --query 感冒吃什么药 --top_k 5
HTTP uses POST /search {"query", "top_k"}; gRPC uses the Pipeline service "search".
"""

import argparse
import json
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--http", help="server base URL")
    g.add_argument("--grpc", help="Pipeline gRPC address host:port")
    p.add_argument("--service", default="search")
    p.add_argument("--query", action="append", required=True)
    p.add_argument("--top_k", type=int, default=5)
    args = p.parse_args(argv)
    from recall.search import format_results

    for q in args.query:
        if args.http:
            import requests

            r = requests.post(args.http.rstrip("/") + "/search", json={"query": q, "top_k": args.top_k}, timeout=120)
            body = r.json()
            if r.status_code != 200:
                sys.exit(f"error {r.status_code}: {body.get('error')}")
            results, note = (
                body["results"],
                f"  (recall {body['timings_ms']['recall_ms']:.0f} ms, rank {body['timings_ms']['rank_ms']:.0f} ms)",
            )
        else:
            from deploy.python.rpc_client import PipelineRpcClient

            err, msg, value = PipelineRpcClient(args.grpc).call(
                [json.dumps({"query": q, "top_k": args.top_k}, ensure_ascii=False)], service=args.service
            )
            if err:
                sys.exit(f"error {err}: {msg}")
            results, note = json.loads(value[0]), ""
        print(format_results(q, results) + note, flush=True)


if __name__ == "__main__":
    main()

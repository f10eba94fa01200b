"""Pipeline gRPC client (the protocol of Paddle Serving's PipelineClient), without paddle_serving.

    python deploy/python/rpc_client.py --server 127.0.0.1:8089 \
        --query 中西方语言与文化的差异 --title 第二语言习得的一大障碍就是文化差异。
"""

import argparse
import json
import sys


class PipelineRpcClient:
    def __init__(self, endpoint="127.0.0.1:8089", timeout=60):
        import grpc

        from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

        self.channel = grpc.insecure_channel(endpoint)
        self.stub = pb_grpc.PipelineServiceStub(self.channel)
        self.timeout = timeout

    def call(self, values, service=""):
        """Raw Pipeline request: value strings -> (err_no, err_msg, reply value strings)."""
        from deploy.proto import pipeline_service_pb2 as pb

        req = pb.Request(name=service, key=[str(i) for i in range(len(values))], value=list(values))
        resp = self.stub.inference(req, timeout=self.timeout)
        return resp.err_no, resp.err_msg, list(resp.value)

    def predict(self, pairs, service=""):
        """pairs: [(query, title)] -> (err_no, err_msg, scores or None)."""
        from deploy.proto import pipeline_service_pb2 as pb

        req = pb.Request(
            name=service,
            key=[str(i) for i in range(len(pairs))],
            value=[json.dumps({"query": q, "title": t}, ensure_ascii=False) for q, t in pairs],
        )
        resp = self.stub.inference(req, timeout=self.timeout)
        scores = json.loads(resp.value[0]) if resp.err_no == 0 else None
        return resp.err_no, resp.err_msg, scores


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="127.0.0.1:8089")
    p.add_argument("--service", default="", help="model name (default: the server's first model)")
    p.add_argument("--query", action="append", required=True)
    p.add_argument("--title", action="append", required=True)
    a = p.parse_args()
    if len(a.query) != len(a.title):
        sys.exit("give as many --title as --query")
    err_no, err_msg, scores = PipelineRpcClient(a.server).predict(list(zip(a.query, a.title)), a.service)
    if err_no:
        sys.exit(f"error {err_no}: {err_msg}")
    for q, t, s in zip(a.query, a.title, scores):
        print({"query": q, "title": t, "pred_prob": round(s, 5)})


if __name__ == "__main__":
    main()

"""General model HTTP client (C++ Serving's /GeneralModelService/inference), JSON or protobuf.

Tokenizes locally with the model's tokenizer (as PaddleNLP's deploy/cpp/http_client.py does) and
sends input_ids / token_type_ids tensors.
    python deploy/cpp/http_client.py --url http://127.0.0.1:8090 --model_dir serving_server \
        --query 中西方语言与文化的差异 --title 第二语言习得的一大障碍就是文化差异。 [--proto] [--gzip]
"""

import argparse
import gzip
import json

import requests


def build_request(input_ids, token_type_ids, fetch=("predict",), log_id=0):
    tensors = []
    for name, arr in (("input_ids", input_ids), ("token_type_ids", token_type_ids)):
        tensors.append(
            {
                "int64_data": [int(v) for row in arr for v in row],
                "elem_type": 0,
                "name": name,
                "alias_name": name,
                "shape": [len(arr), len(arr[0])],
            }
        )
    return {"tensor": tensors, "fetch_var_names": list(fetch), "log_id": log_id}


def infer(url, request, proto=False, compress=False, timeout=60):
    headers = {"Content-Type": "application/json"}
    if proto:
        from deploy.proto import general_model_service_pb2 as pb

        req = pb.Request(fetch_var_names=request["fetch_var_names"], log_id=request["log_id"])
        for t in request["tensor"]:
            req.tensor.add(
                int64_data=t["int64_data"], elem_type=0, name=t["name"], alias_name=t["alias_name"], shape=t["shape"]
            )
        data, headers = req.SerializeToString(), {"Content-Type": "application/proto"}
    else:
        data = json.dumps(request).encode()
    if compress:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    r = requests.post(f"{url.rstrip('/')}/GeneralModelService/inference", data=data, headers=headers, timeout=timeout)
    if proto:
        from deploy.proto import general_model_service_pb2 as pb

        resp = pb.Response()
        resp.ParseFromString(r.content)
        if resp.err_no:
            raise RuntimeError(resp.err_msg)
        return list(resp.outputs[0].tensor[0].float_data)
    body = r.json()
    if r.status_code != 200:
        raise RuntimeError(body.get("err_msg"))
    return body["outputs"][0]["tensor"][0]["float_data"]


def main():
    from core.backbone import load_tokenizer
    from core.data import PairEncoder, pad

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8090")
    p.add_argument("--model_dir", required=True, help="directory with the model's tokenizer files")
    p.add_argument("--max_seq_length", type=int, default=64)
    p.add_argument("--query", action="append", required=True)
    p.add_argument("--title", action="append", required=True)
    p.add_argument("--proto", action="store_true", help="send application/proto instead of JSON")
    p.add_argument("--gzip", action="store_true", help="gzip the request body")
    a = p.parse_args()
    enc = PairEncoder(load_tokenizer(a.model_dir), a.max_seq_length).many(list(zip(a.query, a.title)))
    ids, tts = pad([e[0] for e in enc]).tolist(), pad([e[1] for e in enc]).tolist()
    scores = infer(a.url, build_request(ids, tts), proto=a.proto, compress=a.gzip)
    for q, t, s in zip(a.query, a.title, scores):
        print({"query": q, "title": t, "pred_prob": round(s, 5)})


if __name__ == "__main__":
    main()

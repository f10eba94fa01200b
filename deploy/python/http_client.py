"""Pipeline HTTP client: POST /{service}/prediction as curl or Paddle Serving's web service clients do.

    python deploy/python/http_client.py --url http://127.0.0.1:8090 --service ernie_matching \
        --query 中西方语言与文化的差异 --title 第二语言习得的一大障碍就是文化差异。
"""

import argparse
import json

import requests


def predict(url, service, pairs, timeout=60):
    body = {
        "key": [str(i) for i in range(len(pairs))],
        "value": [str({"query": q, "title": t}) for q, t in pairs],
        "logid": 0,
        "clientip": "",
    }
    reply = requests.post(f"{url.rstrip('/')}/{service}/prediction", data=json.dumps(body), timeout=timeout).json()
    scores = json.loads(reply["value"][0]) if reply.get("err_no") == 0 else None
    return reply.get("err_no"), reply.get("err_msg"), scores


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8090")
    p.add_argument("--service", default="ernie_matching")
    p.add_argument("--query", action="append", required=True)
    p.add_argument("--title", action="append", required=True)
    a = p.parse_args()
    err_no, err_msg, scores = predict(a.url, a.service, list(zip(a.query, a.title)))
    if err_no:
        raise SystemExit(f"error {err_no}: {err_msg}")
    for q, t, s in zip(a.query, a.title, scores):
        print({"query": q, "title": t, "pred_prob": round(s, 5)})


if __name__ == "__main__":
    main()

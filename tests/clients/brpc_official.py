"""Paddle Serving 0.9's own brpc Client against our server (Python 3.9; used by tests/test_brpc.py).

    python3.9-serving brpc_official.py CLIENT_CONF HOST:PORT FEEDS_JSON FETCH
The seed's deploy/cpp/rpc_client.py flow on pre-tokenized feeds. Prints one JSON line per check:
single pair, batch of all pairs, 8 concurrent clients, a feed the model refuses.
"""

import json
import sys
import threading

import numpy as np
from paddle_serving_client import Client


def client(conf, addr):
    c = Client()
    c.load_client_config(conf)
    c.set_rpc_timeout_ms(30000)  # before connect()
    c.connect([addr])
    return c


def main():
    conf, addr, feeds_file, fetch = sys.argv[1:5]
    feeds = {k: np.asarray(v, dtype="int64") for k, v in json.load(open(feeds_file)).items()}
    c = client(conf, addr)
    one = c.predict(feed={k: v[:1] for k, v in feeds.items()}, fetch=[fetch], batch=True)
    print(json.dumps({"scores": np.asarray(one[fetch]).reshape(-1).tolist()}))
    full = c.predict(feed=feeds, fetch=[fetch], batch=True)
    want = np.asarray(full[fetch]).reshape(-1)
    print(json.dumps({"scores": want.tolist()}))
    ok, agree = [], []

    def worker():
        cc = client(conf, addr)
        for _ in range(3):
            r = cc.predict(feed=feeds, fetch=[fetch], batch=True)
            ok.append(r is not None)
            agree.append(r is not None and np.allclose(np.asarray(r[fetch]).reshape(-1), want, atol=1e-5))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"ok": sum(ok) // 3, "agree": all(agree) and len(agree) == 24}))
    bad = {k: v[:1].copy() for k, v in feeds.items()}
    bad["token_type_ids"][:] = 7  # outside the model's token types
    r = c.predict(feed=bad, fetch=[fetch], batch=True)
    print(json.dumps({"result": None if r is None else "answered"}))


if __name__ == "__main__":
    main()

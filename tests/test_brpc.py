"""The C++ Serving RPC door (brpc baidu_std) on the HTTP port: frames built from brpc's RpcMeta, and
Paddle Serving's own brpc Client (Python 3.9, ../shared/tools/paddle-serving-py39)."""

import gzip
import json
import os
import socket
import struct
import subprocess
import threading
import zlib

import numpy as np
import pytest
import requests
from conftest import PAIRS, ROOT

SERVICE = "baidu.paddle_serving.predictor.general_model.GeneralModelService"
PY39 = os.path.join(ROOT, ".cache", "paddle-serving-py39", "bin", "python3.9-serving")


def encoded(served, pairs):
    from core.data import pad

    enc = served["engine"].encode(pairs)
    return pad([e[0] for e in enc]), pad([e[1] for e in enc])


def request_bytes(ids, types, fetch=("predict",)):
    from deploy.proto import general_model_service_pb2 as pb

    req = pb.Request(log_id=0, fetch_var_names=list(fetch))
    for name, arr in (("input_ids", ids), ("token_type_ids", types)):
        req.tensor.add(
            name=name, alias_name=name, elem_type=0, shape=list(arr.shape), int64_data=arr.reshape(-1).tolist()
        )
    return req.SerializeToString()


def frame(payload, correlation_id=7, service=SERVICE, method="inference", compress=0):
    from deploy.transports.brpc import RpcMeta

    meta = RpcMeta(correlation_id=correlation_id, compress_type=compress)
    meta.request.service_name = service
    meta.request.method_name = method
    m = meta.SerializeToString()
    return b"PRPC" + struct.pack(">II", len(m) + len(payload), len(m)) + m + payload


def read_frame(sock):
    from deploy.proto import general_model_service_pb2 as pb
    from deploy.transports.brpc import RpcMeta

    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return buf

    head = exact(12)
    assert head[:4] == b"PRPC"
    body_size, meta_size = struct.unpack(">II", head[4:])
    body = exact(body_size)
    meta = RpcMeta()
    meta.ParseFromString(body[:meta_size])
    resp = pb.Response()
    resp.ParseFromString(body[meta_size:])
    return meta, resp


def connect(served):
    s = socket.create_connection(("127.0.0.1", served["http_port"]), timeout=30)
    return s


def scores(resp):
    t = resp.outputs[0].tensor[0]
    assert t.alias_name == "predict" and t.elem_type == 1
    return np.asarray(t.float_data)


@pytest.mark.parametrize("compress", [0, 1, 2, 3])
def test_brpc_round_trip_on_the_http_port(served, compress):
    import cramjam

    ids, types = encoded(served, PAIRS)
    payload = request_bytes(ids, types)
    payload = {
        0: payload,
        1: bytes(cramjam.snappy.compress_raw(payload)),
        2: gzip.compress(payload),
        3: zlib.compress(payload),
    }[compress]
    with connect(served) as s:
        s.sendall(frame(payload, correlation_id=2**34 + 5, compress=compress))
        meta, resp = read_frame(s)
    assert meta.correlation_id == 2**34 + 5 and meta.response.error_code == 0
    np.testing.assert_allclose(
        scores(resp), served["engine"].run_feeds({"input_ids": ids, "token_type_ids": types}), atol=1e-5
    )


def test_many_frames_per_connection_and_concurrent_connections(served):
    ids, types = encoded(served, PAIRS)
    want = served["engine"].run_feeds({"input_ids": ids, "token_type_ids": types})
    errors = []

    def client(k):
        try:
            with connect(served) as s:
                s.sendall(
                    b"".join(
                        frame(request_bytes(ids[i : i + 1], types[i : i + 1]), correlation_id=100 * k + i)
                        for i in range(len(PAIRS))
                    )
                )  # pipelined: all frames before any reply
                got = {}
                for _ in range(len(PAIRS)):
                    meta, resp = read_frame(s)
                    assert meta.response.error_code == 0, meta
                    got[meta.correlation_id - 100 * k] = scores(resp)[0]
                np.testing.assert_allclose([got[i] for i in range(len(PAIRS))], want, atol=1e-5)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_brpc_errors_are_replies_and_bad_frames_close_only_their_connection(served):
    ids, types = encoded(served, PAIRS[:1])
    good = request_bytes(ids, types)
    with connect(served) as s:
        s.sendall(frame(good, service="some.OtherService"))
        meta, _ = read_frame(s)
        assert meta.response.error_code == 1001 and "no service 'some.OtherService'" in meta.response.error_text
        s.sendall(frame(good, method="predict"))
        meta, _ = read_frame(s)
        assert meta.response.error_code == 1002
        bad = request_bytes(ids, types, fetch=("logits",))
        s.sendall(frame(bad, correlation_id=9))
        meta, _ = read_frame(s)
        assert meta.correlation_id == 9 and meta.response.error_code == 1003
        assert "unknown fetch_var_names ['logits']" in meta.response.error_text
        s.sendall(frame(b"\xff\x00 not a protobuf"))
        meta, _ = read_frame(s)
        assert meta.response.error_code == 1003 and "not a valid general_model Request" in meta.response.error_text
        s.sendall(frame(gzip.compress(b"x" * 3_000_000), compress=2))
        meta, _ = read_frame(s)
        assert meta.response.error_code == 1003 and "exceeds" in meta.response.error_text
        s.sendall(frame(good, correlation_id=11))  # the connection still serves
        meta, resp = read_frame(s)
        assert meta.correlation_id == 11 and meta.response.error_code == 0
    for junk in (b"PRPC" + struct.pack(">II", 2**31, 10), b"PRPC" + struct.pack(">II", 10, 20) + b"x" * 10):
        with connect(served) as s:  # oversized or inconsistent frame: that connection is closed
            s.sendall(junk)
            assert s.recv(100) == b""
    with connect(served) as s:  # a bad frame after a good one
        s.sendall(frame(good) + b"XXXX" + b"\x00" * 20)
        read_frame(s)
        assert s.recv(100) == b""
    r = requests.get(f"http://127.0.0.1:{served['http_port']}/health", timeout=10)
    assert r.status_code == 200 and served["proc"].poll() is None
    with connect(served) as s:
        s.sendall(frame(good, correlation_id=12))
        assert read_frame(s)[0].response.error_code == 0


def py39_client(*args):
    if not os.path.exists(PY39):
        pytest.skip(
            "Paddle Serving's official brpc client needs Python 3.9: bash ../shared/tools/paddle-serving-py39/setup.sh"
        )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    p = subprocess.run(
        [PY39, "-W", "ignore", os.path.join(ROOT, "tests", "clients", "brpc_official.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]


def test_official_brpc_client_single_batch_and_concurrent(served, tmp_path):
    """The seed's rpc_client.py flow with Paddle Serving's own Client: load_client_config, connect,
    predict(feed={"input_ids", "token_type_ids"}, fetch=["predict"], batch=True)."""
    pairs = [(q, t) for q, t in PAIRS] * 4  # 16 pairs: the served config's max_pairs_per_request
    ids, types = encoded(served, pairs)
    want = served["engine"].run_feeds({"input_ids": ids, "token_type_ids": types})
    feeds = tmp_path / "feeds.json"
    feeds.write_text(json.dumps({"input_ids": ids.tolist(), "token_type_ids": types.tolist()}))
    conf = str(served["dir"] / "serving_client" / "serving_client_conf.prototxt")
    out = py39_client(conf, f"127.0.0.1:{served['http_port']}", str(feeds), "predict")
    single, batch, concurrent, bad = out
    np.testing.assert_allclose(single["scores"], want[:1], atol=1e-5)
    np.testing.assert_allclose(batch["scores"], want, atol=1e-5)
    assert concurrent["ok"] == 8 and concurrent["agree"]
    assert bad["result"] is None  # a feed the model refuses: predict() returns None, as against C++ Serving


def test_paddle_serving_style_start_answers_brpc_and_http_for_both_rankers_and_an_encoder(served, tiny_model, tmp_path):
    """`start_server.sh --model serving_server --port P --thread 5 --ir_optim True` (C++ Serving's flags): one
    port, both doors, for the pairwise ranker, a cross-encoder and a recall encoder packaged with export_to_serving."""
    import signal
    import time

    import paddle
    from conftest import free_port, run

    from core.engine import RankerEngine
    from core.exporting import export_static
    from cross_encoder.common import build as build_cross_encoder

    paddle.seed(3)
    ce_model, ce_tok, _, _ = build_cross_encoder(tiny_model)
    export_static(ce_model, str(tmp_path / "ce_export"))
    ce_tok.save_pretrained(str(tmp_path / "ce_export"))
    run(
        [
            "deploy/export_to_serving.py",
            "--dirname",
            str(tmp_path / "ce_export"),
            "--server_path",
            str(tmp_path / "ce_server"),
            "--client_path",
            str(tmp_path / "ce_client"),
            "--fetch_alias_names",
            "predict",
        ]
    )
    ce_engine = RankerEngine(str(tmp_path / "ce_server"), max_seq_length=32, cpu_threads=1)

    enc_server = tmp_path / "encoder_server"
    run(
        [
            "deploy/export_to_serving.py",
            "--dirname",
            str(served["dir"] / "encoder"),
            "--server_path",
            str(enc_server),
            "--client_path",
            str(tmp_path / "encoder_client"),
            "--fetch_alias_names",
            "output_embedding",
        ]
    )
    texts = ["感冒吃什么药", "头疼怎么办"]
    enc = served["encoder"].encode(texts, "query")
    from core.data import pad

    enc_ids, enc_types = pad([e[0] for e in enc]), pad([e[1] for e in enc])
    ids, types = encoded(served, PAIRS * 5)  # a batch of 20 pairs, as the seed's rpc_client.py sends
    cases = [
        (
            served["dir"] / "serving_server",
            served["dir"] / "serving_client",
            "predict",
            ids,
            types,
            served["engine"].run_feeds({"input_ids": ids, "token_type_ids": types}),
        ),
        (
            tmp_path / "ce_server",
            tmp_path / "ce_client",
            "predict",
            ids,
            types,
            ce_engine.run_feeds({"input_ids": ids, "token_type_ids": types}),
        ),
        (
            enc_server,
            tmp_path / "encoder_client",
            "output_embedding",
            enc_ids,
            enc_types,
            served["encoder"].embed(texts, "query"),
        ),
    ]
    for model, client, fetch, ids_, types_, want in cases:
        port = free_port()
        log_path = tmp_path / f"{model.name}.log"
        with open(log_path, "w") as log:  # the server writes to its own copy of the descriptor
            env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
            proc = subprocess.Popen(
                [
                    "bash",
                    "scripts/start_server.sh",
                    "--model",
                    str(model),
                    "--port",
                    str(port),
                    "--thread",
                    "5",
                    "--ir_optim",
                    "True",
                    "--workdir",
                    "workdir",
                    "--mem_optim_off",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            for _ in range(200):
                try:
                    if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.25)
            feeds = tmp_path / "feeds.json"
            feeds.write_text(json.dumps({"input_ids": ids_.tolist(), "token_type_ids": types_.tolist()}))
            out = py39_client(str(client / "serving_client_conf.prototxt"), f"127.0.0.1:{port}", str(feeds), fetch)
            np.testing.assert_allclose(np.asarray(out[1]["scores"]).reshape(want.shape), want, atol=1e-5)
            body = {
                "tensor": [
                    {
                        "int64_data": a.reshape(-1).tolist(),
                        "elem_type": 0,
                        "name": n,
                        "alias_name": n,
                        "shape": list(a.shape),
                    }
                    for n, a in (("input_ids", ids_), ("token_type_ids", types_))
                ],
                "fetch_var_names": [fetch],
                "log_id": 3,
            }
            r = requests.post(f"http://127.0.0.1:{port}/GeneralModelService/inference", json=body, timeout=30).json()
            np.testing.assert_allclose(
                np.asarray(r["outputs"][0]["tensor"][0]["float_data"]).reshape(want.shape), want, atol=1e-5
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        text = open(log_path).read()
        assert "--workdir: a Paddle Serving flag that changes nothing here" in text and "http + brpc" in text

"""The server against the official Paddle Serving clients, curl-style requests and bad input."""

import gzip
import io
import json
import os
import subprocess
import threading

import numpy as np
import pytest
import requests
from conftest import CORPUS, PAIRS, ROOT, run

PY39 = os.path.join(ROOT, ".cache", "paddle-serving-py39", "bin", "python3.9-serving")


def official(served, *args):
    """Paddle Serving's own clients: the unmodified packages on Python 3.9 when that environment is built
    (scripts/test.sh builds it), else their pure-Python files with stubs on this Python."""
    cache = os.path.join(ROOT, ".cache", "paddle_serving_clients")
    if os.path.exists(PY39):
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        p = subprocess.run(
            [PY39, "-W", "ignore", os.path.join(ROOT, "tests", "clients", "official.py"), cache, *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert p.returncode == 0, p.stderr[-3000:]
    else:
        p = run(["tests/clients/official.py", cache, *args], timeout=300)
    return json.loads(p.stdout.strip().splitlines()[-1])


def pipeline_http(served, values, name="ernie_matching", **kw):
    body = {"key": [str(i) for i in range(len(values))], "value": values}
    body.update(kw)
    return requests.post(f"{served['base']}/{name}/prediction", json=body, timeout=60)


def test_pipeline_http_json_and_python_dict_values(served):
    want = served["engine"].score(PAIRS)
    values = [
        json.dumps({"query": q, "title": t}, ensure_ascii=False) if i % 2 else str({"query": q, "title": t})
        for i, (q, t) in enumerate(PAIRS)
    ]
    r = pipeline_http(served, values)
    reply = r.json()
    assert r.status_code == 200 and reply["err_no"] == 0 and reply["key"] == ["predict"]
    got = json.loads(reply["value"][0])
    assert got == eval(reply["value"][0])  # noqa: S307 - the clients eval it; both readings must agree
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_official_pipeline_client_rpc(served):
    out = official(served, "rpc", served["rpc"], json.dumps([{"query": q, "title": t} for q, t in PAIRS]))
    assert out["err_no"] == 0
    np.testing.assert_allclose(out["scores"], served["engine"].score(PAIRS), atol=1e-5)


@pytest.mark.parametrize(
    "mode,compress", [("http_json", ""), ("http_proto", ""), ("http_proto", "gzip"), ("http_json", "gzip")]
)
def test_official_http_client(served, mode, compress):
    from core.data import pad

    enc = served["engine"].encode(PAIRS * 4)  # 16 rows (the limit) of 32 ids: > 512 values, so the client gzips
    ids, tts = pad([e[0] for e in enc]), pad([e[1] for e in enc])
    out = official(
        served,
        mode,
        f"127.0.0.1:{served['http_port']}",
        str(served["dir"] / "serving_client"),
        json.dumps(ids.tolist()),
        json.dumps(tts.tolist()),
        compress,
    )
    want = served["engine"].run_feeds({"input_ids": ids, "token_type_ids": tts})
    np.testing.assert_allclose(out["scores"], want, atol=1e-5)


def test_general_http_curl_body_as_paddlenlp_documents_it(served):
    ids, tts = served["engine"].encode(PAIRS[:1])[0]
    body = {
        "tensor": [
            {"int64_data": ids, "elem_type": 0, "name": "input_ids", "alias_name": "input_ids", "shape": [1, len(ids)]},
            {
                "int64_data": tts,
                "elem_type": 0,
                "name": "token_type_ids",
                "alias_name": "token_type_ids",
                "shape": [1, len(tts)],
            },
        ],
        "fetch_var_names": ["predict"],
        "log_id": 7,
    }
    r = requests.post(served["base"] + "/GeneralModelService/inference", data=json.dumps(body), timeout=60)
    out = r.json()
    assert r.status_code == 200 and out["log_id"] == 7
    t = out["outputs"][0]["tensor"][0]
    assert t["elem_type"] == 1 and t["shape"] == [1] and t["name"] == "predict"
    np.testing.assert_allclose(t["float_data"], served["engine"].score(PAIRS[:1]), atol=1e-5)
    gz = requests.post(
        served["base"] + "/GeneralModelService/inference",
        data=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip"},
        timeout=60,
    )
    assert gz.json()["outputs"][0]["tensor"][0]["float_data"] == t["float_data"]


def test_rerank_and_onnx_backend(served):
    docs = [t for _, t in PAIRS]
    want = served["engine"].score([(PAIRS[0][0], t) for t in docs])
    r = requests.post(
        served["base"] + "/v1/rerank", json={"query": PAIRS[0][0], "documents": docs, "top_n": 3}, timeout=60
    ).json()
    assert [x["index"] for x in r["results"]] == list(np.argsort(-want, kind="mergesort")[:3])
    np.testing.assert_allclose([x["relevance_score"] for x in r["results"]], np.sort(want)[::-1][:3], atol=1e-5)
    onnx = requests.post(
        served["base"] + "/v1/rerank",
        json={"model": "ranker_onnx", "query": PAIRS[0][0], "documents": docs, "return_documents": True},
        timeout=60,
    ).json()
    by_index = {x["index"]: x for x in onnx["results"]}
    np.testing.assert_allclose([by_index[i]["relevance_score"] for i in range(len(docs))], want, atol=1e-4)
    assert by_index[0]["document"]["text"] == docs[0]


def test_concurrent_requests_each_get_their_own_scores(served):
    """Concurrent requests share one batcher; whether they merge depends on timing (tests/test_batching.py
    covers merging deterministically), but every request gets its own rows' scores and every row runs once."""
    before = requests.get(served["base"] + "/metrics", timeout=10).text
    n_req = 12
    results, barrier = [None] * n_req, threading.Barrier(n_req)

    def call(i):
        barrier.wait()
        q, t = PAIRS[i % len(PAIRS)]
        results[i] = pipeline_http(served, [json.dumps({"query": q, "title": t})]).json()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(n_req)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    want = served["engine"].score(PAIRS)
    for i, r in enumerate(results):
        assert r["err_no"] == 0
        assert abs(json.loads(r["value"][0])[0] - want[i % len(PAIRS)]) < 1e-5
    after = requests.get(served["base"] + "/metrics", timeout=10).text

    def metric(text, name):
        line = [l for l in text.splitlines() if l.startswith(name + '{model="ernie_matching"}')]
        return float(line[0].split()[-1]) if line else 0.0

    rows = metric(after, "search_batch_rows_sum") - metric(before, "search_batch_rows_sum")
    batches = metric(after, "search_batch_rows_count") - metric(before, "search_batch_rows_count")
    assert rows == n_req  # each request's row ran exactly once
    assert 1 <= batches <= n_req


def good_request_works(served):
    r = pipeline_http(served, [json.dumps({"query": "感冒", "title": "感冒吃药"})]).json()
    assert r["err_no"] == 0, r


@pytest.mark.parametrize(
    "case",
    ["malformed_json", "mismatch", "unknown_service", "empty_text", "too_many", "too_large", "non_utf8", "not_a_pair"],
)
def test_bad_pipeline_requests(served, case):
    url = served["base"] + "/ernie_matching/prediction"
    good = json.dumps({"query": "q", "title": "t"})
    if case == "malformed_json":
        r = requests.post(url, data=b'{"key": ["0"], "value": [', timeout=30)
        expect = "not valid JSON"
    elif case == "mismatch":
        r = requests.post(url, json={"key": ["0", "1"], "value": [good]}, timeout=30)
        expect = "'key' has 2 entries but 'value' has 1"
    elif case == "unknown_service":
        r = requests.post(served["base"] + "/nope/prediction", json={"key": ["0"], "value": [good]}, timeout=30)
        expect = "no service named 'nope'"
    elif case == "empty_text":
        r = pipeline_http(served, [json.dumps({"query": "  ", "title": "t"})])
        expect = "value[0] query is empty"
    elif case == "too_many":
        r = pipeline_http(served, [good] * 17)
        expect = "17 pairs in one request; the limit is 16"
    elif case == "too_large":
        r = pipeline_http(served, [json.dumps({"query": "q" * 1100000, "title": "t"})])
        expect = "exceeds the 1048576-byte limit"
    elif case == "non_utf8":
        r = requests.post(url, data=b'{"key": ["0"], "value": ["\xff\xfe"]}', timeout=30)
        expect = "not valid UTF-8"
    else:
        r = pipeline_http(served, ["__import__('os').system('echo hacked')"])
        expect = "neither JSON nor a Python literal"
    body = r.json()
    assert body["err_no"] != 0 and expect in body["err_msg"], body
    assert r.status_code in (200, 400, 404, 413)
    good_request_works(served)


def general(served, tensors, fetch=("predict",)):
    return requests.post(
        served["base"] + "/GeneralModelService/inference",
        json={"tensor": tensors, "fetch_var_names": list(fetch), "log_id": 0},
        timeout=30,
    )


def tensor(name, data, shape, key="int64_data", elem=0):
    return {key: data, "elem_type": elem, "name": name, "alias_name": name, "shape": shape}


@pytest.mark.parametrize("case", ["unknown_feed", "wrong_shape", "wrong_dtype", "bad_fetch", "id_out_of_range"])
def test_bad_general_requests(served, case):
    ok_ids = tensor("input_ids", [0, 5, 2], [1, 3])
    ok_tts = tensor("token_type_ids", [0, 0, 0], [1, 3])
    if case == "unknown_feed":
        r, expect = (
            general(served, [ok_ids, tensor("segment_ids", [0, 0, 0], [1, 3])]),
            "unknown feed name 'segment_ids'",
        )
    elif case == "wrong_shape":
        r, expect = general(served, [tensor("input_ids", [0, 5, 2], [1, 4]), ok_tts]), "needs 4 values, got 3"
    elif case == "wrong_dtype":
        r, expect = (
            general(served, [tensor("input_ids", [0.5, 5.0, 2.0], [1, 3], "float_data", 1), ok_tts]),
            "must hold integers",
        )
    elif case == "bad_fetch":
        r, expect = general(served, [ok_ids, ok_tts], fetch=["logits"]), "unknown fetch_var_names ['logits']"
    else:
        r, expect = general(served, [tensor("input_ids", [0, 10**7, 2], [1, 3]), ok_tts]), "input_ids must lie in"
    assert r.status_code == 400 and expect in r.json()["err_msg"], r.text
    assert general(served, [ok_ids, ok_tts]).status_code == 200


def test_rpc_byte_data_is_never_unpickled_and_long_text_is_truncated(served):
    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    stub = pb_grpc.PipelineServiceStub(grpc.insecure_channel(served["rpc"]))
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    req = pb.Request(tensors=[pb.Tensor(name="input_ids", byte_data=buf.getvalue(), elem_type=13)])
    resp = stub.inference(req, timeout=30)
    assert resp.err_no != 0 and "pickled" in resp.err_msg
    # numeric .npy bytes are fine
    from core.data import pad

    enc = served["engine"].encode(PAIRS)
    ids, tts = pad([e[0] for e in enc]), pad([e[1] for e in enc])
    tensors = []
    for name, arr in (("input_ids", ids), ("token_type_ids", tts)):
        b = io.BytesIO()
        np.save(b, arr, allow_pickle=False)
        tensors.append(pb.Tensor(name=name, byte_data=b.getvalue(), elem_type=13))
    resp = stub.inference(pb.Request(tensors=tensors), timeout=30)
    assert resp.err_no == 0
    np.testing.assert_allclose(
        json.loads(resp.value[0]), served["engine"].run_feeds({"input_ids": ids, "token_type_ids": tts}), atol=1e-5
    )
    # a title longer than max_seq_length is truncated, not refused
    long_pair = ("感冒吃什么药", "感冒" * 200)
    resp = stub.inference(
        pb.Request(key=["0"], value=[str({"query": long_pair[0], "title": long_pair[1]})]), timeout=30
    )
    assert resp.err_no == 0
    assert abs(json.loads(resp.value[0])[0] - served["engine"].score([long_pair])[0]) < 1e-5
    assert served["proc"].poll() is None  # still serving


def test_our_clients(served):
    from deploy.cpp.http_client import build_request, infer
    from deploy.python.http_client import predict as http_predict
    from deploy.python.rpc_client import PipelineRpcClient

    want = served["engine"].score(PAIRS)
    err, msg, scores = PipelineRpcClient(served["rpc"]).predict(PAIRS)
    assert err == 0 and np.allclose(scores, want, atol=1e-5)
    err, msg, scores = http_predict(served["base"], "ernie_matching", PAIRS)
    assert err == 0 and np.allclose(scores, want, atol=1e-5)
    from core.data import pad

    enc = served["engine"].encode(PAIRS)
    req = build_request(pad([e[0] for e in enc]).tolist(), pad([e[1] for e in enc]).tolist())
    for proto in (False, True):
        assert np.allclose(infer(served["base"], req, proto=proto, compress=proto), want, atol=1e-5)
    err, msg, scores = PipelineRpcClient(served["rpc"]).predict(PAIRS, service="nope")
    assert err != 0 and "no service named 'nope'" in msg


def test_embeddings_openai_shape_and_pipeline(served):
    texts = [q for q, _ in PAIRS]
    want = served["encoder"].embed(texts)
    assert np.allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)
    r = requests.post(served["base"] + "/v1/embeddings", json={"input": texts, "model": "encoder"}, timeout=60).json()
    got = np.array([d["embedding"] for d in sorted(r["data"], key=lambda d: d["index"])])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert r["object"] == "list" and r["usage"]["total_tokens"] > len(texts)
    single = requests.post(served["base"] + "/v1/embeddings", json={"input": texts[0]}, timeout=60).json()
    np.testing.assert_allclose(single["data"][0]["embedding"], want[0], atol=1e-5)
    p = pipeline_http(served, texts, name="encoder").json()
    assert p["err_no"] == 0 and p["key"] == ["output_embedding"]
    np.testing.assert_allclose(np.array(json.loads(p["value"][0])), want, atol=1e-5)
    bad = requests.post(served["base"] + "/v1/embeddings", json={"input": ["ok", " "]}, timeout=60)
    assert bad.status_code == 400 and "input[1] is empty" in bad.json()["error"]
    wrong = requests.post(
        served["base"] + "/v1/rerank", json={"model": "encoder", "query": "q", "documents": ["d"]}, timeout=60
    )
    assert wrong.status_code == 400 and "not a ranker" in wrong.json()["error"]


def test_paddle_serving_config_nlp_yml_is_accepted(tmp_path):
    from deploy.config import ConfigError, from_dict

    cfg = from_dict(
        {
            "worker_num": 20,
            "http_port": 8088,
            "rpc_port": 8089,
            "dag": {"is_thread_op": False},
            "op": {
                "ernie": {
                    "concurrency": 1,
                    "local_service_conf": {
                        "client_type": "local_predictor",
                        "device_type": 1,
                        "fetch_list": ["predict"],
                        "model_config": "../../serving_server/",
                    },
                }
            },
        },
        base_dir=str(tmp_path),
    )
    assert cfg["http_port"] == 8088 and cfg["rpc_port"] == 8089 and cfg["worker_num"] == 20
    assert [m["name"] for m in cfg["models"]] == ["ernie"] and cfg["models"][0]["kind"] == "ranker"
    with pytest.raises(ConfigError, match="kind must be one of"):
        from_dict({"models": [{"name": "a", "model_dir": "x", "kind": "ocr"}]})
    with pytest.raises(ConfigError, match="'models' must list at least one model"):
        from_dict({"http_port": 1})
    models = [{"name": "r", "model_dir": "x"}, {"name": "e", "model_dir": "y", "kind": "encoder"}]
    search = from_dict({"models": models, "search": {"encoder": "e", "ranker": "r"}}, base_dir=str(tmp_path))["search"]
    assert (search["rerank"], search["rrf_k"], search["recall_weight"], search["lexical_weight"]) == (
        "score_fused",
        10,
        1.0,
        0.0,
    )
    with pytest.raises(ConfigError, match="search: 'rerank' must be one of fused, score_fused, ranker, got 'best'"):
        from_dict({"models": models, "search": {"encoder": "e", "ranker": "r", "rerank": "best"}})
    for bad in (1.5, -1, "half", True):
        with pytest.raises(ConfigError, match="search: 'recall_weight' must be a number from 0 to 1"):
            from_dict({"models": models, "search": {"encoder": "e", "ranker": "r", "recall_weight": bad}})
        with pytest.raises(ConfigError, match="search: 'lexical_weight' must be a number from 0 to 1"):
            from_dict({"models": models, "search": {"encoder": "e", "ranker": "r", "lexical_weight": bad}})


def test_search_recalls_from_milvus_and_reranks(served):
    url = served["base"] + "/search"
    r = requests.post(url, json={"query": "感冒吃什么药", "top_k": 4, "rerank": "ranker"}, timeout=60)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert [x["rank"] for x in res] == [1, 2, 3, 4]
    scores = [x["rank_score"] for x in res]
    assert scores == sorted(scores, reverse=True) and "fused_score" not in res[0]
    want = served["engine"].score([("感冒吃什么药", x["text"]) for x in res])
    np.testing.assert_allclose(scores, want, atol=1e-5)
    # recall similarity: the cosine of the served encoder's embeddings
    q = served["encoder"].embed(["感冒吃什么药"], "query")[0]
    docs = served["encoder"].embed([x["text"] for x in res], "passage")
    np.testing.assert_allclose([x["recall_similarity"] for x in res], docs @ q, atol=1e-4)
    assert set(x["text"] for x in res) <= set(CORPUS)
    # the default top_k of the config, and the recall order when re-ranking is off
    assert len(requests.post(url, json={"query": "头疼"}, timeout=60).json()["results"]) == 3
    plain = requests.post(url, json={"query": "头疼", "rerank": False, "top_k": 6}, timeout=60).json()["results"]
    sims = [x["recall_similarity"] for x in plain]
    assert sims == sorted(sims, reverse=True) and plain[0]["rank_score"] is None
    # the default (rerank: score_fused): the recall similarities and the ranker's scores, each min-max
    # scaled over the recalled list (all 6 here), the similarities weighted by the config's recall_weight (0.5)
    by_score = requests.post(url, json={"query": "头疼", "top_k": 6}, timeout=60).json()["results"]
    assert sorted(x["text"] for x in by_score) == sorted(x["text"] for x in plain)
    ranker = served["engine"].score([("头疼", x["text"]) for x in plain])
    sim, ranker = np.asarray(sims), np.asarray(ranker)
    scaled_sims, scaled_ranker = (sim - sim.min()) / np.ptp(sim), (ranker - ranker.min()) / np.ptp(ranker)
    want = dict(zip([x["text"] for x in plain], 0.5 * scaled_sims + scaled_ranker))
    rounding = 2e-6 * (0.5 / np.ptp(sim) + 1 / np.ptp(ranker))  # the reply's similarities have 6 digits
    got = [x["fused_score"] for x in by_score]
    np.testing.assert_allclose(got, [want[x["text"]] for x in by_score], atol=rounding + 1e-5)
    assert got == sorted(got, reverse=True)
    # rerank: fused, reciprocal-rank fusion (k = 10) of the recall order and the ranker's order, at the
    # config's recall_weight (0.5) and at a request's own: 0 is the ranker's order, 1 the unweighted fusion
    by_ranker = sorted(range(6), key=lambda i: -ranker[i])
    for w, own in ((0.5, {}), (0, {"recall_weight": 0}), (1, {"recall_weight": 1})):
        ask = {"query": "头疼", "top_k": 6, "rerank": "fused", **own}
        got = requests.post(url, json=ask, timeout=60).json()["results"]
        rrf = {plain[i]["text"]: w / (10 + i + 1) + 1 / (10 + by_ranker.index(i) + 1) for i in range(6)}
        np.testing.assert_allclose([x["fused_score"] for x in got], [rrf[x["text"]] for x in got], atol=1e-5)
        if w == 0:
            assert [x["text"] for x in got] == [plain[i]["text"] for i in by_ranker]
    health = requests.get(served["base"] + "/health", timeout=10).json()
    assert health["search"]["rows"] == len(CORPUS)


@pytest.mark.parametrize(
    "body,status,message",
    [
        ({"query": "  "}, 400, "query is empty"),
        ({"query": "感冒", "top_k": 0}, 400, "top_k must be an integer"),
        ({"query": "感冒", "recall_num": "many"}, 400, "recall_num must be an integer"),
        ({"query": "感冒", "rerank": "best"}, 400, "rerank must be one of fused, score_fused, ranker"),
        ({"query": "感冒", "recall_weight": 2}, 400, "recall_weight must be a number from 0 to 1"),
        ({"query": "感冒", "recall_weight": "0.5"}, 400, "recall_weight must be a number from 0 to 1"),
        ({"top_k": 3}, 400, "query must be a string"),
        (b"\xff\xfe{", 400, "UTF-8"),
    ],
)
def test_bad_search_requests(served, body, status, message):
    kw = {"data": body} if isinstance(body, bytes) else {"json": body}
    r = requests.post(served["base"] + "/search", timeout=60, **kw)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert requests.post(served["base"] + "/search", json={"query": "感冒"}, timeout=60).ok  # still serving


def test_search_over_pipeline_grpc_and_run_system(served, tmp_path):
    from deploy.python.rpc_client import PipelineRpcClient

    want = requests.post(served["base"] + "/search", json={"query": "感冒吃什么药", "top_k": 3}, timeout=60).json()
    err, msg, value = PipelineRpcClient(served["rpc"]).call(["感冒吃什么药"], service="search")
    assert err == 0, msg
    assert [x["text"] for x in json.loads(value[0])] == [x["text"] for x in want["results"]]
    http = requests.post(
        served["base"] + "/search/prediction", json={"key": ["q"], "value": ["感冒吃什么药"]}, timeout=60
    ).json()
    assert http["err_no"] == 0 and json.loads(http["value"][0]) == json.loads(value[0])
    # PaddleNLP's run_system.py flow: embeddings from the encoder service, Milvus searched by the client
    # through the port the server exposes, scores from the ranker service
    p = run(
        [
            "deploy/python/run_system.py",
            "--server",
            served["rpc"],
            "--encoder_service",
            "encoder",
            "--ranker_service",
            "ernie_matching",
            "--milvus_uri",
            served["milvus"],
            "--collection",
            "titles",
            "--recall_num",
            "6",
            "--top_k",
            "3",
            "--recall_weight",
            "0.5",
            "--output_dir",
            str(tmp_path),
            "--query",
            "感冒吃什么药",
        ]
    )
    ranked = [l.split("  ")[-1] for l in p.stdout.splitlines() if l.strip()[:2] in ("1.", "2.", "3.")]
    assert ranked == [x["text"] for x in want["results"]], p.stdout
    assert os.path.isfile(tmp_path / "recall_result.csv") and os.path.isfile(tmp_path / "rank_result.csv")
    # the ranker's order alone, asked of the search service and computed by run_system.py
    by_ranker = requests.post(
        served["base"] + "/search", json={"query": "感冒吃什么药", "top_k": 6, "rerank": "ranker"}, timeout=60
    ).json()["results"]
    err, msg, value = PipelineRpcClient(served["rpc"]).call(
        [json.dumps({"query": "感冒吃什么药", "top_k": 6, "rerank": "ranker"})], service="search"
    )
    assert err == 0 and [x["text"] for x in json.loads(value[0])] == [x["text"] for x in by_ranker]
    p = run(
        [
            "deploy/python/run_system.py",
            "--server",
            served["rpc"],
            "--encoder_service",
            "encoder",
            "--ranker_service",
            "ernie_matching",
            "--milvus_uri",
            served["milvus"],
            "--collection",
            "titles",
            "--recall_num",
            "6",
            "--top_k",
            "6",
            "--rerank",
            "ranker",
            "--output_dir",
            str(tmp_path),
            "--query",
            "感冒吃什么药",
        ]
    )
    ranked = [l.split("  ")[-1] for l in p.stdout.splitlines() if l.strip()[:2] in [f"{i}." for i in range(1, 7)]]
    assert ranked == [x["text"] for x in by_ranker], p.stdout
    # the score fusion: each result's fused_score is 0.5 * minmax(recall similarity) + minmax(ranker score)
    # over the recalled list (all 6 returned here), best first; the same over Pipeline gRPC and run_system.py
    ask = {"query": "感冒吃什么药", "top_k": 6, "recall_num": 6, "rerank": "score_fused", "recall_weight": 0.5}
    by_score = requests.post(served["base"] + "/search", json=ask, timeout=60).json()["results"]
    sims = np.array([x["recall_similarity"] for x in by_score])
    scores = np.array([x["rank_score"] for x in by_score])
    want_fused = 0.5 * (sims - sims.min()) / np.ptp(sims) + (scores - scores.min()) / np.ptp(scores)
    got = [x["fused_score"] for x in by_score]
    rounding = 2e-6 * (0.5 / np.ptp(sims) + 1 / np.ptp(scores))  # the reply's scores have 6 digits
    np.testing.assert_allclose(got, want_fused, atol=rounding + 1e-6)
    assert got == sorted(got, reverse=True)
    err, msg, value = PipelineRpcClient(served["rpc"]).call([json.dumps(ask)], service="search")
    assert err == 0 and [x["text"] for x in json.loads(value[0])] == [x["text"] for x in by_score]
    p = run(
        ["deploy/python/run_system.py", "--server", served["rpc"], "--encoder_service", "encoder", "--ranker_service",
         "ernie_matching", "--milvus_uri", served["milvus"], "--collection", "titles", "--recall_num", "6",
         "--top_k", "6", "--rerank", "score_fused", "--recall_weight", "0.5", "--output_dir", str(tmp_path),
         "--query", "感冒吃什么药"]
    )  # fmt: skip
    ranked = [l.split("  ")[-1] for l in p.stdout.splitlines() if l.strip()[:2] in [f"{i}." for i in range(1, 7)]]
    assert ranked == [x["text"] for x in by_score], p.stdout

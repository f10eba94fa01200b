"""Server start and stop, API key, overload and deadlines: separate server processes on the models of
the `served` fixture."""

import http.client as http_client
import json
import signal
import threading
import time

import pytest
import requests
from conftest import CORPUS, free_port, run, start_server

GOOD = json.dumps({"query": "感冒", "title": "感冒吃药"}, ensure_ascii=False)


def in_flight(base, endpoint):
    """search_requests_in_flight{endpoint} from the server's /metrics."""
    for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f'search_requests_in_flight{{endpoint="{endpoint}"}}'):
            return float(line.split()[-1])
    return 0.0


def wait_for(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def write_config(path, served, extra="", search=None, batching="{max_batch_size: 32, max_wait_ms: 5}"):
    http, rpc = free_port(), free_port()
    d = served["dir"]
    path.write_text(f"""
http_port: {http}
rpc_port: {rpc}
max_pairs_per_request: 16
{extra}
models:
  - name: ernie_matching
    model_dir: {d / "serving_server"}
    max_seq_length: 32
    cpu_threads: 1
    batching: {batching}
  - name: encoder
    model_dir: {d / "encoder"}
    kind: encoder
    max_seq_length: 32
    cpu_threads: 1
{search or ""}
""")
    return http, rpc


def build_index(served, tmp_path):
    """CORPUS indexed by the served encoder in a Milvus Lite database under tmp_path (collection 'titles')."""
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("".join(t + "\n" for t in CORPUS), encoding="utf-8")
    db = tmp_path / "milvus.db"
    run(
        ["recall/build_index.py", "--model_dir", str(served["dir"] / "encoder"), "--corpus_file", str(corpus)]
        + ["--milvus_uri", str(db), "--collection", "titles", "--max_seq_length", "32", "--index_type", "FLAT"]
    )
    return db


def test_sigterm_under_load_answers_in_flight_requests_exits_0_and_restart_serves_the_same_index(served, tmp_path):
    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    db = build_index(served, tmp_path)
    search = f"search: {{encoder: encoder, ranker: ernie_matching, milvus_uri: {db}, collection: titles, top_k: 3}}"
    cfg = tmp_path / "config.yml"
    http, rpc = write_config(cfg, served, "shutdown_grace_s: 20", search, "{max_batch_size: 64, max_wait_ms: 1000}")
    proc, base = start_server(cfg, tmp_path / "server.log")
    before = requests.post(base + "/search", json={"query": "感冒吃什么药"}, timeout=30).json()["results"]
    stub = pb_grpc.PipelineServiceStub(grpc.insecure_channel(f"127.0.0.1:{rpc}"))
    results, started = {}, threading.Barrier(8)

    def http_call(i):
        started.wait()
        results[f"http{i}"] = requests.post(
            base + "/ernie_matching/prediction", json={"key": ["0"], "value": [GOOD]}, timeout=60
        ).json()["err_no"]

    def rpc_call(i):
        started.wait()
        results[f"rpc{i}"] = stub.inference(
            pb.Request(name="ernie_matching", key=["0"], value=[GOOD]), timeout=60
        ).err_no

    text = requests.get(base + "/metrics", timeout=10).text
    assert 'search_queue_rows{model="ernie_matching"} 0.0' in text and in_flight(base, "pipeline_http") == 0
    # a request held inside the server: its body is half sent, so it is in flight until the rest comes
    body = json.dumps({"key": ["0"], "value": [GOOD]}, ensure_ascii=False).encode()
    slow = http_client.HTTPConnection("127.0.0.1", http, timeout=60)
    slow.putrequest("POST", "/ernie_matching/prediction")
    slow.putheader("Content-Type", "application/json")
    slow.putheader("Content-Length", str(len(body)))
    slow.endheaders(body[:10])
    wait_for(lambda: in_flight(base, "pipeline_http") == 1, "the half-sent request to be in flight")
    # load on both doors while it is held: answered
    threads = [threading.Thread(target=f, args=(i,)) for i in range(4) for f in (http_call, rpc_call)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {k: 0 for k in results} and len(results) == 8, results
    assert in_flight(base, "pipeline_http") == 1

    proc.send_signal(signal.SIGTERM)
    log_path = tmp_path / "server.log"
    wait_for(lambda: "SIGTERM: draining" in log_path.read_text(), "the server to start draining")
    # the doors are closed to new calls...
    with pytest.raises(grpc.RpcError) as refused:
        stub.inference(pb.Request(name="ernie_matching", key=["0"], value=[GOOD]), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    # ...and the request in flight is answered: the rest of its body arrives after the signal
    slow.send(body[10:])
    reply = slow.getresponse()
    assert reply.status == 200, reply.read()[:500]
    answer = json.loads(reply.read())
    slow.close()
    want = served["engine"].score([("感冒", "感冒吃药")])[0]
    assert answer["err_no"] == 0 and abs(json.loads(answer["value"][0])[0] - want) < 1e-5, answer
    assert proc.wait(timeout=60) == 0
    log = log_path.read_text()
    assert "server stopped" in log and "Traceback" not in log, log[-3000:]
    proc, base = start_server(cfg, tmp_path / "server2.log")  # the database was closed cleanly: it reopens
    try:
        after = requests.post(base + "/search", json={"query": "感冒吃什么药"}, timeout=30).json()["results"]
        assert after == before
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0


def test_api_key_guards_every_door_but_health(served, tmp_path):
    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    cfg = tmp_path / "config.yml"
    http, rpc = write_config(cfg, served, "api_key: s3cret-key\nmax_queue_rows: 2")
    proc, base = start_server(cfg, tmp_path / "server.log")
    try:
        body = {"query": "感冒", "documents": ["感冒吃药"]}
        assert requests.get(base + "/health", timeout=10).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"}):
            r = requests.post(base + "/v1/rerank", json=body, headers=headers, timeout=10)
            assert r.status_code == 401 and "API key" in r.json()["error"]
            r = requests.post(
                base + "/ernie_matching/prediction", json={"key": ["0"], "value": [GOOD]}, headers=headers, timeout=10
            )
            assert r.status_code == 401 and r.json()["err_no"] == 5
            assert requests.get(base + "/metrics", headers=headers, timeout=10).status_code == 401
        ok = {"Authorization": "Bearer s3cret-key"}
        r = requests.post(base + "/v1/rerank", json=body, headers=ok, timeout=10)
        assert r.status_code == 200 and len(r.json()["results"]) == 1
        assert requests.get(base + "/metrics", headers=ok, timeout=10).status_code == 200
        stub = pb_grpc.PipelineServiceStub(grpc.insecure_channel(f"127.0.0.1:{rpc}"))
        req = pb.Request(name="ernie_matching", key=["0"], value=[GOOD])
        denied = stub.inference(req, timeout=10)
        assert denied.err_no == 5 and "API key" in denied.err_msg
        assert stub.inference(req, timeout=10, metadata=[("authorization", "Bearer s3cret-key")]).err_no == 0
        # more rows than the queue holds: 503 "overloaded" with Retry-After, not a wait
        r = requests.post(
            base + "/v1/rerank", json={"query": "q", "documents": ["a", "b", "c"]}, headers=ok, timeout=10
        )
        assert r.status_code == 503 and r.headers["Retry-After"] == "1" and "max_queue_rows" in r.json()["error"]
        assert requests.post(base + "/v1/rerank", json=body, headers=ok, timeout=10).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_requests_past_their_deadline_get_504_and_the_server_keeps_serving(served, tmp_path):
    cfg = tmp_path / "config.yml"
    write_config(cfg, served, "request_timeout_s: 0.000001\nhost: 127.0.0.1")
    proc, base = start_server(cfg, tmp_path / "server.log")
    try:
        for _ in range(3):
            r = requests.post(base + "/v1/rerank", json={"query": "q", "documents": ["a"]}, timeout=10)
            assert r.status_code == 504 and "deadline" in r.json()["error"]
            r = requests.post(base + "/ernie_matching/prediction", json={"key": ["0"], "value": [GOOD]}, timeout=10)
            assert r.status_code == 504 and r.json()["err_no"] == 1
        assert requests.get(base + "/health", timeout=10).status_code == 200
        text = requests.get(base + "/metrics", timeout=10).text
        assert 'outcome="timeout",status="504"' in text
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_secure_defaults_and_limits_in_the_config():
    from deploy.config import ConfigError, from_dict

    cfg = from_dict({"models": [{"name": "r", "model_dir": "x"}]})
    assert cfg["host"] == "127.0.0.1" and cfg["api_key"] is None and cfg["api_docs"] is False
    assert (cfg["max_text_chars"], cfg["request_timeout_s"], cfg["max_queue_rows"]) == (8192, 30.0, 4096)
    for bad in ({"request_timeout_s": 0}, {"max_text_chars": "many"}, {"api_key": 123}):
        try:
            from_dict(dict(bad, models=[{"name": "r", "model_dir": "x"}]))
        except ConfigError as e:
            assert next(iter(bad)) in str(e)
        else:
            raise AssertionError(f"{bad} was accepted")


def test_hybrid_search_serves_bm25_matches_and_refuses_an_index_without_bm25(served, tmp_path):
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("".join(t + "\n" for t in CORPUS), encoding="utf-8")
    db = tmp_path / "hybrid.db"
    for name, flags in (("hybrid", ["--lexical"]), ("plain", [])):
        built = run(
            ["recall/build_index.py", "--model_dir", str(served["dir"] / "encoder"), "--corpus_file", str(corpus)]
            + ["--milvus_uri", str(db), "--collection", name, "--max_seq_length", "32", "--index_type", "FLAT", *flags]
        )
        assert (", with BM25;" in built.stdout) == bool(flags)
    search = f"""search:
  encoder: encoder
  ranker: ernie_matching
  milvus_uri: {db}
  collection: {{}}
  recall_num: 8
  lexical_weight: 1.0
"""
    cfg = tmp_path / "plain.yml"
    write_config(cfg, served, "host: 127.0.0.1", search=search.format("plain"))
    p = run(["-m", "deploy.server", "--config", str(cfg)], check=False)
    assert p.returncode != 0 and "lexical_weight 1.0 needs an index with BM25, but 'plain'" in p.stdout + p.stderr
    assert "--lexical" in p.stdout + p.stderr
    cfg = tmp_path / "hybrid.yml"
    write_config(cfg, served, "host: 127.0.0.1", search=search.format("hybrid"))
    proc, base = start_server(cfg, tmp_path / "server.log")
    try:
        # the tiny encoder is random; with lexical weight 1 the title sharing the query's words comes first
        for query, want in (("糖尿病有什么症状", "糖尿病的早期症状"), ("高血压吃什么", "高血压不能吃什么")):
            r = requests.post(base + "/search", json={"query": query, "top_k": 3, "rerank": False}, timeout=60)
            assert r.status_code == 200, r.text
            top = r.json()["results"][0]
            assert top["text"] == want and top["recall_similarity"] > 1.0, top  # cosine + 1 * BM25 / best BM25
        r = requests.post(base + "/search", json={"query": "糖尿病有什么症状", "top_k": 3}, timeout=60)
        assert (
            r.status_code == 200 and len(r.json()["results"]) == 3 and r.json()["results"][0]["rank_score"] is not None
        )
        r = requests.post(base + "/search", json={"query": "", "top_k": 3}, timeout=60)
        assert r.status_code == 400 and "query" in r.json()["error"]
        assert requests.get(base + "/health", timeout=10).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0


def test_search_is_bounded_when_milvus_hangs_answers_503_when_it_is_down_and_recovers_when_it_is_back(served, tmp_path):
    """Server B searches the Milvus that server A serves from its Lite database (search.milvus_port). A stopped
    (SIGSTOP: Milvus hangs), killed (Milvus down) and restarted (its collection released) must each leave B
    answering at once, within the request's deadline, and serving everything else."""
    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    db, milvus_port = build_index(served, tmp_path), free_port()
    search = "search: {{encoder: encoder, ranker: ernie_matching, milvus_uri: {}, collection: titles, top_k: 3{}}}"
    cfg_a, cfg_b = tmp_path / "a.yml", tmp_path / "b.yml"
    write_config(cfg_a, served, "host: 127.0.0.1", search.format(db, f", milvus_port: {milvus_port}"))
    _, rpc_b = write_config(
        cfg_b, served, "host: 127.0.0.1\nrequest_timeout_s: 3", search.format(f"http://127.0.0.1:{milvus_port}", "")
    )
    proc_a, base_a = start_server(cfg_a, tmp_path / "a.log")
    proc_b = None
    try:
        proc_b, base_b = start_server(cfg_b, tmp_path / "b.log")
        query = {"query": "感冒吃什么药", "top_k": 3}
        want = requests.post(base_a + "/search", json=query, timeout=30).json()["results"]
        assert requests.post(base_b + "/search", json=query, timeout=30).json()["results"] == want
        stub = pb_grpc.PipelineServiceStub(grpc.insecure_channel(f"127.0.0.1:{rpc_b}"))
        rerank = {"query": "感冒", "documents": ["感冒吃药", "头疼"]}

        proc_a.send_signal(signal.SIGSTOP)  # Milvus hangs: B gives up at the request's deadline
        try:
            r = requests.post(base_b + "/search", json=query, timeout=30)
            assert r.status_code == 504 and "did not answer within" in r.json()["error"], r.text
            reply = stub.inference(pb.Request(name="search", key=["q"], value=["感冒吃什么药"]), timeout=30)
            assert reply.err_no == 1 and f"127.0.0.1:{milvus_port} did not answer" in reply.err_msg, reply
            assert requests.post(base_b + "/v1/rerank", json=rerank, timeout=10).status_code == 200
            health = requests.get(base_b + "/health", timeout=30)  # its Milvus calls are bounded too
            assert health.status_code == 200 and "did not answer" in health.json()["search"]["error"], health.text
        finally:
            proc_a.send_signal(signal.SIGCONT)

        proc_a.terminate()  # Milvus down: 503 naming it, at once
        assert proc_a.wait(timeout=60) == 0
        r = requests.post(base_b + "/search", json=query, timeout=30)
        assert r.status_code == 503 and f"Milvus at http://127.0.0.1:{milvus_port} failed" in r.json()["error"], r.text
        health = requests.get(base_b + "/health", timeout=30)
        assert health.status_code == 200 and "failed" in health.json()["search"]["error"]
        assert requests.post(base_b + "/v1/rerank", json=rerank, timeout=10).status_code == 200

        proc_a, _ = start_server(cfg_a, tmp_path / "a2.log")  # back, with its collection released: B loads it
        answers = []  # B's connection comes back within its reconnect backoff (a second); no restart of B
        wait_for(
            lambda: answers.append(requests.post(base_b + "/search", json=query, timeout=30)) or answers[-1].ok,
            "B to search again",
        )
        assert answers[-1].json()["results"] == want and {r.status_code for r in answers[:-1]} <= {503}, answers[
            -1
        ].text
    finally:
        for proc in (proc_b, proc_a):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                assert proc.wait(timeout=60) == 0

"""The server under hostile input: every malformed request on every endpoint and transport gets a 4xx /
an err_no that is neither 0 nor 8 with a message naming the problem, and the server keeps serving
the same answers; long texts cannot stall other clients; limits hold for every protocol."""

import gzip
import json
import threading
import time

import numpy as np
import pytest
import requests

PIPE, ENC, SEARCHP = "/ernie_matching/prediction", "/encoder/prediction", "/search/prediction"
GENERAL, RERANK, EMB, SEARCH = "/GeneralModelService/inference", "/v1/rerank", "/v1/embeddings", "/search"
GOOD = json.dumps({"query": "感冒", "title": "感冒吃药"}, ensure_ascii=False)
DEEP = ("[" * 100000 + "]" * 100000).encode()
SURR = '"\\ud800x"'  # a lone UTF-16 surrogate, as JSON text


def ids(data, shape, name="input_ids", key="int64_data"):
    return {key: data, "elem_type": 0, "name": name, "alias_name": name, "shape": shape}


def general_body(id_tensor=None, type_tensor=None, **extra):
    t = [id_tensor or ids([0, 5, 2], [1, 3]), type_tensor or ids([0, 0, 0], [1, 3], "token_type_ids")]
    body = {"tensor": [x for x in t if x != "drop"], "fetch_var_names": ["predict"], "log_id": 0}
    body.update(extra)
    return body


def pipe(values, keys=None, **extra):
    body = {"key": keys if keys is not None else [str(i) for i in range(len(values))], "value": values}
    body.update(extra)
    return body


def raw(text):
    return text.encode("utf-8")


# Body-level cases, sent to every JSON endpoint: (name, body bytes, headers, status, message)
BODY_CASES = [
    ("malformed_json", b'{"key": [', {}, 400, "not valid JSON"),
    ("empty_body", b"", {}, 400, "not valid JSON"),
    ("non_utf8", b'{"a": "\xff\xfe"}', {}, 400, "not valid UTF-8"),
    ("deep_nesting", DEEP, {}, 400, "nested"),
    ("top_level_list", b"[1, 2]", {}, 400, "must be a JSON object"),
    ("top_level_string", b'"text"', {}, 400, "must be a JSON object"),
    ("json_null", b"null", {}, 400, "must be a JSON object"),
    ("too_large", b"{" + b" " * 1100000 + b"}", {}, 413, "1048576-byte limit"),
    (
        "gzip_bomb",
        gzip.compress(b"{" + b" " * 3000000 + b"}"),
        {"Content-Encoding": "gzip"},
        413,
        "decompressed body exceeds",
    ),
    ("bad_gzip", b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "not gzip data"),
    ("unknown_encoding", b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding 'br' is not supported"),
]
JSON_ENDPOINTS = [PIPE, ENC, SEARCHP, GENERAL, RERANK, EMB, SEARCH]

# Endpoint-specific cases: (name, path, body object or bytes, status, message)
CASES = [
    # Pipeline HTTP, ranker service
    ("pipe_mismatch", PIPE, pipe([GOOD], keys=["0", "1"]), 400, "'key' has 2 entries but 'value' has 1"),
    ("pipe_key_not_list", PIPE, {"key": "0", "value": [GOOD]}, 400, "'key' and 'value' must be lists"),
    ("pipe_value_string", PIPE, {"key": ["0"], "value": GOOD}, 400, "'key' and 'value' must be lists"),
    ("pipe_value_missing", PIPE, {"key": ["0"]}, 400, "must be lists"),
    ("pipe_empty", PIPE, pipe([]), 400, "'value' is empty"),
    ("pipe_too_many", PIPE, pipe([GOOD] * 17), 413, "17 pairs in one request; the limit is 16"),
    ("pipe_empty_query", PIPE, pipe([json.dumps({"query": " ", "title": "t"})]), 400, "value[0] query is empty"),
    ("pipe_code", PIPE, pipe(["__import__('os').system('echo hacked')"]), 400, "neither JSON nor a Python literal"),
    ("pipe_number_value", PIPE, pipe([42]), 400, "value[0] must be a dict with 'query' and 'title'"),
    ("pipe_list_value", PIPE, pipe([["q", "t"]]), 400, "value[0] must be a dict"),
    ("pipe_no_title", PIPE, pipe([json.dumps({"query": "q"})]), 400, "must be a dict with 'query' and 'title'"),
    (
        "pipe_query_list",
        PIPE,
        pipe([json.dumps({"query": ["q"], "title": "t"})]),
        400,
        "value[0] query must be a string",
    ),
    ("pipe_title_number", PIPE, pipe([{"query": "q", "title": 5}]), 400, "value[0] title must be a string"),
    (
        "pipe_surrogate",
        PIPE,
        raw('{"key": ["0"], "value": [{"query": "q", "title": ' + SURR + "}]}"),
        400,
        "lone UTF-16 surrogate",
    ),
    (
        "pipe_long_text",
        PIPE,
        pipe([json.dumps({"query": "感" * 2001, "title": "t"})]),
        413,
        "value[0] query has 2001 characters; the limit is 2000",
    ),
    ("pipe_key_int", PIPE, pipe([GOOD], keys=[0]), 400, "key[0] must be a string"),
    ("pipe_key_surrogate", PIPE, raw('{"key": [' + SURR + '], "value": ["x"]}'), 400, "key[0] holds a lone"),
    ("pipe_logid_string", PIPE, pipe([GOOD], logid="abc"), 400, "'logid' must be an integer"),
    ("pipe_nested_literal", PIPE, pipe(["[" * 50 + "]" * 50]), 400, "nested more than"),
    ("pipe_unknown_service", "/nope/prediction", pipe([GOOD]), 404, "no service named 'nope'"),
    # Pipeline HTTP, encoder and search services
    ("enc_number", ENC, pipe([123]), 400, "value[0] must be a string"),
    ("enc_blank", ENC, pipe(["  "]), 400, "value[0] is empty"),
    ("enc_surrogate", ENC, raw('{"key": ["0"], "value": [' + SURR + "]}"), 400, "lone UTF-16 surrogate"),
    ("enc_long", ENC, pipe(["x" * 2001]), 413, "has 2001 characters"),
    ("enc_too_many", ENC, pipe(["a"] * 17), 413, "the limit is 16"),
    ("search_value_number", SEARCHP, pipe([7]), 400, "value[0] must be a string"),
    ("search_query_number", SEARCHP, pipe([json.dumps({"query": 5})]), 400, "value[0] must be a string"),
    (
        "search_top_k_string",
        SEARCHP,
        pipe([json.dumps({"query": "感冒", "top_k": "x"})]),
        400,
        "top_k must be an integer",
    ),
    ("search_top_k_zero", SEARCHP, pipe([json.dumps({"query": "感冒", "top_k": 0})]), 400, "top_k must be an integer"),
    (
        "search_rerank_bad",
        SEARCHP,
        pipe([json.dumps({"query": "感冒", "rerank": "best"})]),
        400,
        "rerank must be one of",
    ),
    ("search_rerank_list", SEARCHP, pipe([json.dumps({"query": "感冒", "rerank": [1]})]), 400, "rerank must be one of"),
    # General model JSON
    ("gen_huge_id", GENERAL, general_body(ids([0, 10**30, 2], [1, 3])), 400, "outside the int64 range"),
    ("gen_string_ids", GENERAL, general_body(ids(["0", "5", "2"], [1, 3])), 400, "must hold integers, got a string"),
    ("gen_ragged", GENERAL, general_body(ids([[0, 5], [2]], [2, 2])), 400, "must hold integers, got a list"),
    ("gen_float_ids", GENERAL, general_body(ids([0.0, 5.5, 2.0], [1, 3])), 400, "must hold integers, got a number"),
    ("gen_bool_ids", GENERAL, general_body(ids([True, False, True], [1, 3])), 400, "must hold integers, got a boolean"),
    (
        "gen_float_data",
        GENERAL,
        general_body(ids([0.5, 5.0, 2.0], [1, 3], key="float_data")),
        400,
        "must hold integers (int64_data or int_data), got float_data",
    ),
    ("gen_shape_overflow", GENERAL, general_body(ids([0, 5, 2], [2**40, 2**40])), 413, "holds more than 1024 values"),
    ("gen_zero_width", GENERAL, general_body(ids([0, 5, 2], [1, 0])), 400, "shape must hold positive integers"),
    ("gen_negative_shape", GENERAL, general_body(ids([0, 5, 2], [-1, 3])), 400, "shape must hold positive integers"),
    ("gen_shape_string", GENERAL, general_body(ids([0, 5, 2], "1,3")), 400, "shape must be a list"),
    ("gen_shape_4d", GENERAL, general_body(ids([0, 5, 2], [1, 1, 1, 3])), 400, "shape must be a list of 1 to 3"),
    ("gen_shape_mismatch", GENERAL, general_body(ids([0, 5, 2], [1, 4])), 400, "needs 4 values, got 3"),
    (
        "gen_type_negative",
        GENERAL,
        general_body(None, ids([0, -1, 0], [1, 3], "token_type_ids")),
        400,
        "token_type_ids must lie in [0, 2)",
    ),
    (
        "gen_type_too_big",
        GENERAL,
        general_body(None, ids([0, 5, 0], [1, 3], "token_type_ids")),
        400,
        "token_type_ids must lie in [0, 2)",
    ),
    ("gen_id_out_of_vocab", GENERAL, general_body(ids([0, 10**7, 2], [1, 3])), 400, "input_ids must lie in"),
    ("gen_negative_id", GENERAL, general_body(ids([0, -3, 2], [1, 3])), 400, "input_ids must lie in"),
    (
        "gen_too_long",
        GENERAL,
        general_body(ids([1] * 200, [1, 200]), ids([0] * 200, [1, 200], "token_type_ids")),
        400,
        "exceeds the model's 128 positions",
    ),
    (
        "gen_too_many_rows",
        GENERAL,
        general_body(ids([1] * 17, [17, 1]), ids([0] * 17, [17, 1], "token_type_ids")),
        413,
        "17 rows in feed 'input_ids' in one request; the limit is 16",
    ),
    ("gen_too_many_tokens", GENERAL, general_body(ids([1] * 1100, [10, 110])), 413, "holds more than 1024 values"),
    (
        "gen_unknown_feed",
        GENERAL,
        general_body(None, ids([0, 0, 0], [1, 3], "segment_ids")),
        400,
        "unknown feed name 'segment_ids'",
    ),
    ("gen_missing_feed", GENERAL, general_body(None, "drop"), 400, "missing feed 'token_type_ids'"),
    (
        "gen_duplicate_feed",
        GENERAL,
        {"tensor": [ids([0, 5, 2], [1, 3]), ids([0, 5, 2], [1, 3])]},
        400,
        "feed 'input_ids' is given twice",
    ),
    (
        "gen_shapes_differ",
        GENERAL,
        general_body(None, ids([0, 0], [1, 2], "token_type_ids")),
        400,
        "differs from token_type_ids shape",
    ),
    ("gen_log_id_string", GENERAL, general_body(log_id="abc"), 400, "'log_id' must be a non-negative integer"),
    ("gen_log_id_negative", GENERAL, general_body(log_id=-1), 400, "'log_id' must be a non-negative integer"),
    ("gen_fetch_string", GENERAL, general_body(fetch_var_names="predict"), 400, "'fetch_var_names' must be a list"),
    ("gen_fetch_unknown", GENERAL, general_body(fetch_var_names=["logits"]), 400, "unknown fetch_var_names ['logits']"),
    ("gen_tensor_not_object", GENERAL, {"tensor": [5]}, 400, "tensor[0] must be an object"),
    ("gen_tensor_empty", GENERAL, {"tensor": []}, 400, "'tensor' must be a non-empty list"),
    ("gen_tensor_missing", GENERAL, {"fetch_var_names": ["predict"]}, 400, "'tensor' must be a non-empty list"),
    (
        "gen_tensor_no_name",
        GENERAL,
        {"tensor": [{"int64_data": [1], "shape": [1, 1]}]},
        400,
        "needs a string 'alias_name' or 'name'",
    ),
    (
        "gen_name_list",
        GENERAL,
        {"tensor": [{"int64_data": [1], "shape": [1, 1], "name": ["x"]}]},
        400,
        "needs a string 'alias_name' or 'name'",
    ),
    (
        "gen_elem_type_string",
        GENERAL,
        general_body(dict(ids([0, 5, 2], [1, 3]), elem_type="int")),
        400,
        "'elem_type' must be an integer",
    ),
    ("gen_no_data", GENERAL, {"tensor": [{"name": "input_ids", "shape": [1, 3]}]}, 400, "has no int64_data/int_data"),
    ("gen_many_tensors", GENERAL, {"tensor": [ids([1], [1, 1])] * 9}, 400, "lists 9 tensors"),
    # /v1/rerank
    ("rerank_no_query", RERANK, {"documents": ["d"]}, 400, "query must be a string, got NoneType"),
    ("rerank_query_list", RERANK, {"query": ["q"], "documents": ["d"]}, 400, "query must be a string"),
    ("rerank_query_blank", RERANK, {"query": "  ", "documents": ["d"]}, 400, "query is empty"),
    ("rerank_docs_empty", RERANK, {"query": "q", "documents": []}, 400, "'documents' must be a non-empty list"),
    ("rerank_docs_string", RERANK, {"query": "q", "documents": "d"}, 400, "'documents' must be a non-empty list"),
    ("rerank_doc_number", RERANK, {"query": "q", "documents": [1]}, 400, "documents[0] must be a string"),
    (
        "rerank_doc_text_number",
        RERANK,
        {"query": "q", "documents": [{"text": 5}]},
        400,
        "documents[0] must be a string",
    ),
    ("rerank_top_n_true", RERANK, {"query": "q", "documents": ["d"], "top_n": True}, 400, "'top_n' must be an integer"),
    ("rerank_top_n_zero", RERANK, {"query": "q", "documents": ["d"], "top_n": 0}, 400, "'top_n' must be an integer"),
    (
        "rerank_top_n_string",
        RERANK,
        {"query": "q", "documents": ["d"], "top_n": "3"},
        400,
        "'top_n' must be an integer",
    ),
    ("rerank_top_n_float", RERANK, {"query": "q", "documents": ["d"], "top_n": 2.5}, 400, "'top_n' must be an integer"),
    (
        "rerank_return_docs_string",
        RERANK,
        {"query": "q", "documents": ["d"], "return_documents": "yes"},
        400,
        "'return_documents' must be true or false",
    ),
    (
        "rerank_model_list",
        RERANK,
        {"query": "q", "documents": ["d"], "model": ["x"]},
        400,
        "'model' must be a string, got a list",
    ),
    (
        "rerank_model_object",
        RERANK,
        {"query": "q", "documents": ["d"], "model": {"a": 1}},
        400,
        "'model' must be a string, got an object",
    ),
    ("rerank_encoder_model", RERANK, {"query": "q", "documents": ["d"], "model": "encoder"}, 400, "not a ranker"),
    ("rerank_too_many", RERANK, {"query": "q", "documents": ["d"] * 17}, 413, "17 documents in one request"),
    (
        "rerank_long_doc",
        RERANK,
        {"query": "q", "documents": ["d" * 200000]},
        413,
        "documents[0] has 200000 characters; the limit is 2000",
    ),
    ("rerank_surrogate", RERANK, raw('{"query": ' + SURR + ', "documents": ["d"]}'), 400, "query holds a lone"),
    # /v1/embeddings
    ("emb_no_input", EMB, {}, 400, "input must be a non-empty list of strings"),
    ("emb_input_number", EMB, {"input": 5}, 400, "input must be a non-empty list"),
    ("emb_input_empty", EMB, {"input": []}, 400, "input must be a non-empty list"),
    ("emb_input_item_number", EMB, {"input": [1]}, 400, "input[0] must be a string"),
    ("emb_input_blank", EMB, {"input": ["ok", " "]}, 400, "input[1] is empty"),
    ("emb_input_type_list", EMB, {"input": ["a"], "input_type": ["query"]}, 400, "'input_type' must be a string"),
    (
        "emb_input_type_bad",
        EMB,
        {"input": ["a"], "input_type": "document"},
        400,
        "'input_type' must be one of query, passage",
    ),
    (
        "emb_format_base64",
        EMB,
        {"input": ["a"], "encoding_format": "base64"},
        400,
        "'encoding_format' must be one of float",
    ),
    ("emb_model_list", EMB, {"input": ["a"], "model": ["encoder"]}, 400, "'model' must be a string"),
    ("emb_ranker_model", EMB, {"input": ["a"], "model": "ernie_matching"}, 400, "not an encoder"),
    ("emb_too_many", EMB, {"input": ["a"] * 17}, 413, "the limit is 16"),
    ("emb_surrogate", EMB, raw('{"input": [' + SURR + "]}"), 400, "lone UTF-16 surrogate"),
    # /search
    ("search_no_query", SEARCH, {"top_k": 3}, 400, "query must be a string"),
    ("search_query_list", SEARCH, {"query": ["感冒"]}, 400, "query must be a string, got list"),
    ("search_query_blank", SEARCH, {"query": "  "}, 400, "query is empty"),
    ("search_top_k_true", SEARCH, {"query": "感冒", "top_k": True}, 400, "top_k must be an integer"),
    ("search_top_k_string", SEARCH, {"query": "感冒", "top_k": "3"}, 400, "top_k must be an integer"),
    ("search_top_k_huge", SEARCH, {"query": "感冒", "top_k": 10**6}, 400, "top_k must be an integer from 1 to 200"),
    ("search_recall_zero", SEARCH, {"query": "感冒", "recall_num": 0}, 400, "recall_num must be an integer"),
    ("search_recall_huge", SEARCH, {"query": "感冒", "recall_num": 10**6}, 400, "recall_num must be an integer"),
    ("search_recall_string", SEARCH, {"query": "感冒", "recall_num": "many"}, 400, "recall_num must be an integer"),
    ("search_rerank_number", SEARCH, {"query": "感冒", "rerank": 5}, 400, "rerank must be one of"),
    (
        "search_rerank_best",
        SEARCH,
        {"query": "感冒", "rerank": "best"},
        400,
        "rerank must be one of fused, score_fused, ranker",
    ),
    (
        "search_recall_weight_negative",
        SEARCH,
        {"query": "感冒", "recall_weight": -1e9},
        400,
        "recall_weight must be a number",
    ),
    ("search_long_query", SEARCH, {"query": "感" * 5000}, 413, "query has 5000 characters"),
    ("search_surrogate", SEARCH, raw('{"query": ' + SURR + "}"), 400, "query holds a lone"),
]


def error_text(r):
    if r.headers.get("content-type", "").startswith("application/proto"):
        from deploy.proto import general_model_service_pb2 as pb

        m = pb.Response()
        m.ParseFromString(r.content)
        return m.err_no, m.err_msg
    body = r.json()
    if "err_no" in body:
        return body["err_no"], body["err_msg"]
    return None, body["error"]


@pytest.fixture(scope="module")
def baseline(served):
    """Known-good answers before the hostile requests; they must be the same after."""
    return good_answers(served)


def good_answers(served):
    b = served["base"]
    out = {
        "pipeline": requests.post(b + PIPE, json=pipe([GOOD]), timeout=30).json(),
        "rerank": requests.post(
            b + RERANK, json={"query": "感冒", "documents": ["感冒吃药", "头疼"]}, timeout=30
        ).json(),
        "embeddings": requests.post(b + EMB, json={"input": ["感冒"]}, timeout=30).json()["data"],
        "search": requests.post(b + SEARCH, json={"query": "感冒吃什么药"}, timeout=30).json()["results"],
        "general": requests.post(b + GENERAL, json=general_body(), timeout=30).json()["outputs"],
    }
    assert out["pipeline"]["err_no"] == 0, out
    return out


def check_alive(served, baseline):
    r = requests.post(served["base"] + PIPE, json=pipe([GOOD]), timeout=30).json()
    assert r == baseline["pipeline"]
    assert served["proc"].poll() is None


def send(served, path, body, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(served["base"] + path, data=data, headers=headers or {}, timeout=60)


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("name,body,headers,status,message", BODY_CASES, ids=[c[0] for c in BODY_CASES])
def test_bad_bodies_on_every_http_endpoint(served, baseline, path, name, body, headers, status, message):
    r = send(served, path, body, headers)
    err_no, msg = error_text(r)
    assert r.status_code == status and message in msg, (r.status_code, r.text[:500])
    assert err_no in (None, 9)
    check_alive(served, baseline)


@pytest.mark.parametrize("name,path,body,status,message", CASES, ids=[c[0] for c in CASES])
def test_bad_fields(served, baseline, name, path, body, status, message):
    r = send(served, path, body)
    err_no, msg = error_text(r)
    assert r.status_code == status and message in msg, (r.status_code, r.text[:500])
    assert err_no not in (0, 8)
    check_alive(served, baseline)


def test_bad_general_proto(served, baseline):
    from deploy.proto import general_model_service_pb2 as pb

    hdr = {"Content-Type": "application/proto"}
    cases = [(b"\xff\x00garbage", "not a valid general_model Request")]
    req = pb.Request(log_id=0)
    cases.append((req.SerializeToString(), "request has no tensor"))
    req = pb.Request(log_id=0)
    req.tensor.add(name="input_ids", float_data=[0.5, 1.0], shape=[1, 2])
    cases.append((req.SerializeToString(), "must hold integers"))
    req = pb.Request(log_id=0)
    req.tensor.add(name="input_ids", int64_data=[0, 5, 2], shape=[1, 4])
    req.tensor.add(name="token_type_ids", int64_data=[0, 0, 0], shape=[1, 3])
    cases.append((req.SerializeToString(), "needs 4 values, got 3"))
    req = pb.Request(log_id=0)
    req.tensor.add(name="input_ids", int64_data=[0, 5, 2], shape=[1, 3])
    req.tensor.add(name="token_type_ids", int64_data=[0, 7, 0], shape=[1, 3])
    cases.append((req.SerializeToString(), "token_type_ids must lie in [0, 2)"))
    for body, message in cases:
        r = send(served, GENERAL, body, hdr)
        err_no, msg = error_text(r)
        assert r.status_code == 400 and err_no == 9 and message in msg, (message, r.status_code, msg)
    check_alive(served, baseline)


def test_bad_grpc_requests(served, baseline):
    import io

    import grpc

    from deploy.proto import pipeline_service_pb2 as pb
    from deploy.proto import pipeline_service_pb2_grpc as pb_grpc

    stub = pb_grpc.PipelineServiceStub(grpc.insecure_channel(served["rpc"]))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    floats = io.BytesIO()
    np.save(floats, np.zeros((1, 3), dtype=np.float32))
    cases = [
        (pb.Request(name="ernie_matching", key=["0"], value=["{'query': 'q'"]), 9, "neither JSON nor a Python literal"),
        (pb.Request(name="ernie_matching", key=["0", "1"], value=[GOOD]), 9, "'key' has 2 entries"),
        (pb.Request(name="nope", key=["0"], value=[GOOD]), 7, "no service named 'nope'"),
        (pb.Request(name="ernie_matching", key=[str(i) for i in range(17)], value=[GOOD] * 17), 9, "the limit is 16"),
        (
            pb.Request(name="ernie_matching", tensors=[pb.Tensor(name="input_ids", byte_data=pickled.getvalue())]),
            9,
            "pickled",
        ),
        (
            pb.Request(name="ernie_matching", tensors=[pb.Tensor(name="input_ids", byte_data=b"\x93NUMPY garbage")]),
            9,
            "not a .npy array",
        ),
        (
            pb.Request(name="ernie_matching", tensors=[pb.Tensor(name="input_ids", byte_data=floats.getvalue())]),
            9,
            "must hold integers",
        ),
        (pb.Request(name="ernie_matching", tensors=[pb.Tensor(name="input_ids", elem_type=0)]), 9, "carries no data"),
        (
            pb.Request(name="ernie_matching", tensors=[pb.Tensor(name="input_ids", int64_data=[1, 2], shape=[1, 3])]),
            9,
            "needs 3 values, got 2",
        ),
        (
            pb.Request(
                name="ernie_matching",
                tensors=[
                    pb.Tensor(name="input_ids", int64_data=[1, 2**40], shape=[1, 2]),
                    pb.Tensor(name="token_type_ids", int64_data=[0, 0], shape=[1, 2]),
                ],
            ),
            9,
            "input_ids must lie in",
        ),
        (
            pb.Request(
                name="ernie_matching",
                tensors=[
                    pb.Tensor(name="input_ids", int64_data=[1, 2], shape=[1, 2]),
                    pb.Tensor(name="token_type_ids", int64_data=[0, -1], shape=[1, 2]),
                ],
            ),
            9,
            "token_type_ids must lie in",
        ),
        (
            pb.Request(
                name="ernie_matching", tensors=[pb.Tensor(name="input_ids", int64_data=[1] * 2000, shape=[1, 2000])]
            ),
            9,
            "the limit is 1024",
        ),
        (
            pb.Request(
                name="ernie_matching",
                tensors=[
                    pb.Tensor(name="x", str_data=[GOOD]),
                    pb.Tensor(name="input_ids", int64_data=[1], shape=[1, 1]),
                ],
            ),
            9,
            "either str_data values or id tensors",
        ),
        (
            pb.Request(name="search", tensors=[pb.Tensor(name="input_ids", int64_data=[1], shape=[1, 1])]),
            9,
            "takes query texts",
        ),
        (
            pb.Request(name="search", key=["q"], value=[json.dumps({"query": "感冒", "top_k": -1})]),
            9,
            "top_k must be an integer",
        ),
        (pb.Request(name="encoder", key=["0"], value=[" "]), 9, "value[0] is empty"),
        (pb.Request(name="encoder", key=["0"], value=["x" * 2001]), 9, "has 2001 characters"),
    ]
    for req, err_no, message in cases:
        resp = stub.inference(req, timeout=30)
        assert resp.err_no == err_no and message in resp.err_msg, (message, resp.err_no, resp.err_msg)
    check_alive(served, baseline)


def test_answers_unchanged_and_errors_counted(served, baseline):
    assert good_answers(served) == baseline
    text = requests.get(served["base"] + "/metrics", timeout=10).text
    statuses = {
        line.split('status="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("search_requests_total{")
    }
    assert {"400", "413"} <= statuses and not any(s.startswith("5") for s in statuses), statuses


def test_long_text_is_refused_at_once_while_others_are_served(served):
    """A 200,000-character text: refused before tokenizing, and /health answers meanwhile."""
    huge = "感冒" * 100000
    results, t = {}, {}

    def big():
        t0 = time.monotonic()
        body = json.dumps({"query": huge, "documents": ["d"]}, ensure_ascii=False).encode()  # 600 KB
        results["big"] = requests.post(served["base"] + RERANK, data=body, timeout=60)
        t["big"] = time.monotonic() - t0

    th = threading.Thread(target=big)
    th.start()
    health = [requests.get(served["base"] + "/health", timeout=10).status_code for _ in range(5)]
    th.join()
    assert health == [200] * 5
    r = results["big"]
    assert r.status_code == 413 and "query has 200000 characters; the limit is 2000" in r.json()["error"]
    assert t["big"] < 2.0, t  # refused before any tokenizing (milliseconds), far below the bound


def test_general_model_rows_are_batched_and_bounded(served):
    """Rows of a General-model request go through the batcher (metrics) and the row limit holds."""
    from core.data import pad

    enc = served["engine"].encode([("感冒", "感冒吃药")] * 16)
    ids_, tts = pad([e[0] for e in enc]), pad([e[1] for e in enc])
    body = general_body(
        ids(ids_.reshape(-1).tolist(), list(ids_.shape)),
        ids(tts.reshape(-1).tolist(), list(tts.shape), "token_type_ids"),
    )
    r = requests.post(served["base"] + GENERAL, json=body, timeout=30)
    assert r.status_code == 200
    np.testing.assert_allclose(
        r.json()["outputs"][0]["tensor"][0]["float_data"],
        served["engine"].run_feeds({"input_ids": ids_, "token_type_ids": tts}),
        atol=1e-5,
    )
    ids17 = np.vstack([ids_, ids_[:1]])
    body = general_body(
        ids(ids17.reshape(-1).tolist(), list(ids17.shape)),
        ids(np.zeros_like(ids17).reshape(-1).tolist(), list(ids17.shape), "token_type_ids"),
    )
    r = requests.post(served["base"] + GENERAL, json=body, timeout=30)
    assert r.status_code == 413 and "the limit is 16" in r.json()["err_msg"]


def test_health_shows_no_paths_and_docs_are_off(served):
    h = requests.get(served["base"] + "/health", timeout=10)
    assert h.status_code == 200 and str(served["dir"]) not in h.text and "model_dir" not in h.text
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert requests.get(served["base"] + path, timeout=10).status_code == 404

"""ERNIE-Gram (the mission's pairwise backbone): a tiny random ErnieGramModel (its config carries its own
embedding_size, set to the hidden size) goes through pairwise training, export (Paddle Inference, ONNX, int8),
evaluation and serving."""

import json
import os

import numpy as np
import pytest
import requests
from conftest import PAIRS, free_port, run, start_server


@pytest.fixture(scope="module")
def ernie_gram(data_dir, tmp_path_factory):
    from core.data import read_labeled_pairs
    from core.tiny import make_tiny_ernie

    rows = read_labeled_pairs(str(data_dir / "rank/train.csv")) + read_labeled_pairs(
        str(data_dir / "sort/dev_pairwise.csv")
    )
    d = tmp_path_factory.mktemp("tiny_ernie_gram")
    return make_tiny_ernie(str(d), [r["query"] + r["title"] for r in rows], dropout=0.0, arch="ernie_gram")


def test_ernie_gram_pairwise_trains_exports_evaluates_and_serves(ernie_gram, small, tmp_path):
    from ernie_matching import train_pairwise

    cfg = json.load(
        open(
            os.path.join(
                ernie_gram,
                "config.json" if os.path.isfile(os.path.join(ernie_gram, "config.json")) else "model_config.json",
            )
        )
    )
    assert cfg["embedding_size"] == cfg["hidden_size"] == 32 and "ErnieGram" in json.dumps(cfg)
    save = tmp_path / "ckpt"
    result = train_pairwise.main(
        [
            "--train_file",
            small["pair_train"],
            "--test_file",
            small["dev"],
            "--model_name_or_path",
            ernie_gram,
            "--save_dir",
            str(save),
            "--batch_size",
            "16",
            "--epochs",
            "6",
            "--learning_rate",
            "2e-3",
            "--margin",
            "0.3",
            "--eval_step",
            "0",
            "--save_step",
            "1000",
            "--max_seq_length",
            "48",
            "--logging_steps",
            "8",
            "--dropout",
            "0.0",
        ]
    )
    losses = result["losses"]
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    ckpt = result["last_checkpoint"]
    out = tmp_path / "export"
    run(["ernie_matching/export_model.py", "--params_path", ckpt, "--output_path", str(out), "--onnx", "--int8"])
    assert json.load(open(out / "ranker.json"))["margin"] == 0.3  # the checkpoint's margin, not a default
    from core.engine import RankerEngine

    paddle_engine = RankerEngine(str(out), max_seq_length=48, cpu_threads=1)
    onnx_engine = RankerEngine(str(out), backend="onnxruntime", max_seq_length=48, cpu_threads=1)
    want = paddle_engine.score(PAIRS)
    np.testing.assert_allclose(onnx_engine.score(PAIRS), want, atol=1e-5)
    # evaluation on the export agrees with evaluation of the checkpoint
    p = run(
        [
            "ernie_matching/evaluate.py",
            "--init_from_ckpt",
            ckpt,
            "--test_file",
            small["dev"],
            "--max_seq_length",
            "48",
            "--output_file",
            str(tmp_path / "m.json"),
        ]
    )
    from core.data import read_labeled_pairs
    from core.metrics import auc

    rows = read_labeled_pairs(small["dev"])
    exported_auc = auc([r["label"] for r in rows], paddle_engine.score([(r["query"], r["title"]) for r in rows]))
    assert json.load(open(tmp_path / "m.json"))["auc"] == pytest.approx(exported_auc, abs=1e-5), p.stdout
    # served: /v1/rerank and the Pipeline door give the exported model's scores
    http = free_port()
    conf = tmp_path / "serve.yml"
    conf.write_text(
        f"http_port: {http}\nmodels:\n  - name: gram\n    model_dir: {out}\n    max_seq_length: 48\n"
        f"    cpu_threads: 1\n"
    )
    proc, base = start_server(conf, tmp_path / "server.log")
    try:
        r = requests.post(
            base + "/v1/rerank", json={"query": PAIRS[0][0], "documents": [t for _, t in PAIRS]}, timeout=30
        ).json()
        got = {x["index"]: x["relevance_score"] for x in r["results"]}
        np.testing.assert_allclose(
            [got[i] for i in range(len(PAIRS))], paddle_engine.score([(PAIRS[0][0], t) for _, t in PAIRS]), atol=1e-5
        )
        r = requests.post(
            base + "/gram/prediction",
            json={"key": ["0"], "value": [str({"query": PAIRS[1][0], "title": PAIRS[1][1]})]},
            timeout=30,
        ).json()
        assert r["err_no"] == 0 and abs(json.loads(r["value"][0])[0] - want[1]) < 1e-5
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0

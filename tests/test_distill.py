"""Distilling the cross-encoder into a student with fewer layers (cross_encoder/train_ce.py --teacher --num_layers)."""

import json
import os

import numpy as np
import pytest
from conftest import run

from core.data import PairEncoder, pad, read_labeled_pairs


def common_args(small, save_dir, epochs):
    return [
        "--train_set",
        small["rank_train"],
        "--test_file",
        small["dev"],
        "--save_dir",
        str(save_dir),
        "--batch_size",
        "16",
        "--epochs",
        str(epochs),
        "--learning_rate",
        "2e-3",
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


def logits_of(ckpt, rows):
    """The two logits of a cross-encoder checkpoint's dynamic model on `rows` -> (array [n, 2], model)."""
    import paddle

    from cross_encoder.common import build

    model, tokenizer, _, _ = build(None, params_path=ckpt)
    model.eval()
    enc = PairEncoder(tokenizer, 48)
    e = [enc(r["query"], r["title"]) for r in rows]
    with paddle.no_grad():
        logits = model(paddle.to_tensor(pad([x[0] for x in e])), paddle.to_tensor(pad([x[1] for x in e]))).numpy()
    return logits, model


def margins(ckpt, rows):
    """The logit margin (l1 - l0) of a checkpoint's dynamic model on `rows`."""
    logits, model = logits_of(ckpt, rows)
    return logits[:, 1] - logits[:, 0], model


@pytest.fixture(scope="module")
def distilled(small, tiny_model, tmp_path_factory):
    from cross_encoder.train_ce import main

    teacher = main(["--model_name_or_path", tiny_model, *common_args(small, tmp_path_factory.mktemp("teacher"), 4)])
    student_dir = tmp_path_factory.mktemp("student")
    student = main(
        [
            "--teacher",
            teacher["last_checkpoint"],
            "--num_layers",
            "1",
            "--distill_alpha",
            "1.0",
            *common_args(small, student_dir, 4),
        ]
    )
    return teacher, student


def test_student_keeps_the_lower_layers_only(distilled):
    _, student = distilled
    ckpt = student["last_checkpoint"]
    assert json.load(open(os.path.join(ckpt, "config.json")))["num_hidden_layers"] == 1
    meta = json.load(open(os.path.join(ckpt, "ranker.json")))
    assert meta["distilled_from"]["alpha"] == 1.0
    import paddle

    keys = paddle.load(os.path.join(ckpt, "model_state.pdparams")).keys()
    assert any(".layers.0." in k for k in keys) and not any(".layers.1." in k for k in keys)


def test_distillation_lowers_the_loss_and_brings_the_student_to_its_teacher(distilled, small):
    teacher, student = distilled
    losses = student["losses"]
    assert np.mean(losses[-6:]) < 0.5 * np.mean(losses[:6]), losses
    rows = read_labeled_pairs(small["dev"])
    t, _ = margins(teacher["last_checkpoint"], rows)
    s, _ = margins(student["last_checkpoint"], rows)
    # before distillation the student is the teacher's first layer with the teacher's head
    from core.backbone import keep_lower_layers
    from cross_encoder.common import build

    cut, tok, _, _ = build(None, params_path=teacher["last_checkpoint"])
    keep_lower_layers(cut.model, 1)
    cut.eval()
    import paddle

    enc = PairEncoder(tok, 48)
    e = [enc(r["query"], r["title"]) for r in rows]
    with paddle.no_grad():
        lg = cut(paddle.to_tensor(pad([x[0] for x in e])), paddle.to_tensor(pad([x[1] for x in e]))).numpy()
    before = lg[:, 1] - lg[:, 0]
    assert np.mean((s - t) ** 2) < 0.5 * np.mean((before - t) ** 2)


def test_student_exports_and_serves_its_dynamic_scores(distilled, small, tmp_path):
    from core.engine import RankerEngine

    _, student = distilled
    out = tmp_path / "student_export"
    run(["cross_encoder/export_model.py", "--params_path", student["last_checkpoint"], "--output_path", str(out)])
    rows = read_labeled_pairs(small["dev"])[:32]
    _, model = margins(student["last_checkpoint"], rows)
    engine = RankerEngine(str(out), max_seq_length=48, cpu_threads=1)
    static = engine.score([(r["query"], r["title"]) for r in rows])
    import paddle

    enc = PairEncoder(engine.tokenizer, 48)
    e = [enc(r["query"], r["title"]) for r in rows]
    dynamic = model.predict(paddle.to_tensor(pad([x[0] for x in e])), paddle.to_tensor(pad([x[1] for x in e])))
    np.testing.assert_allclose(static, dynamic.numpy(), atol=1e-5)


def test_bad_num_layers_is_named(small, tiny_model, tmp_path):
    p = run(
        ["cross_encoder/train_ce.py", "--model_name_or_path", tiny_model, "--num_layers", "5"]
        + common_args(small, tmp_path, 1),
        check=False,
    )
    assert p.returncode != 0
    assert "--num_layers 5" in p.stderr + p.stdout and "2 layers" in p.stderr + p.stdout

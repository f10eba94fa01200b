"""Both rankers on real KUAKE-QTR rows with a tiny random backbone: train, evaluate, predict, export."""

import json
import os

import numpy as np
import pytest
from conftest import run

from core.data import PairEncoder, pad, read_labeled_pairs
from core.inference import PaddlePredictor
from core.metrics import auc

KINDS = {
    "pairwise": (
        "ernie_matching.train_pairwise",
        "ernie_matching.common",
        "ernie_matching.evaluate",
        "ernie_matching.predict_pairwise",
        "ernie_matching/export_model.py",
        "pair_train",
        "--train_file",
    ),
    "cross_encoder": (
        "cross_encoder.train_ce",
        "cross_encoder.common",
        "cross_encoder.evaluate",
        "cross_encoder.predict",
        "cross_encoder/export_model.py",
        "rank_train",
        "--train_set",
    ),
    # the same cross-encoder head fed the mean of the token states (how e5 backbones are used)
    "cross_encoder_mean": (
        "cross_encoder.train_ce",
        "cross_encoder.common",
        "cross_encoder.evaluate",
        "cross_encoder.predict",
        "cross_encoder/export_model.py",
        "rank_train",
        "--train_set",
    ),
}


def mod(name):
    import importlib

    return importlib.import_module(name)


@pytest.fixture(scope="module", params=list(KINDS))
def trained(request, small, tiny_model, tmp_path_factory):
    kind = request.param
    train_mod, _, _, _, _, train_key, train_flag = KINDS[kind]
    save_dir = tmp_path_factory.mktemp(kind)
    result = mod(train_mod).main(
        [
            train_flag,
            small[train_key],
            "--test_file",
            small["dev"],
            "--model_name_or_path",
            tiny_model,
            "--save_dir",
            str(save_dir),
            "--batch_size",
            "16",
            "--epochs",
            "6",
            "--learning_rate",
            "2e-3",
            "--warmup_proportion",
            "0.1",
            "--weight_decay",
            "0.01",
            "--eval_step",
            "16",
            "--save_step",
            "1000",
            "--max_seq_length",
            "48",
            "--logging_steps",
            "8",
            "--dropout",
            "0.0",
            "--pooling",
            "mean" if kind.endswith("_mean") else "auto",
        ]
    )
    if kind.endswith("_mean"):
        assert json.load(open(os.path.join(result["last_checkpoint"], "ranker.json")))["pooling"] == "mean"
    return kind, save_dir, result


def test_training_lowers_the_loss(trained):
    kind, save_dir, result = trained
    losses = result["losses"]
    assert len(losses) == result["global_step"] > 40
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < 0.9 * first, (kind, first, last)  # 60 steps of a tiny random model on 160 rows


def test_training_curves_in_visualdl_and_png(trained):
    from visualdl.reader.reader import LogReader

    kind, save_dir, result = trained
    logdir = save_dir / "vdl_log"
    (record,) = [f for f in os.listdir(logdir) if f.startswith("vdlrecords")]
    reader = LogReader(file_path=str(logdir / record))
    assert {"train/loss", "train/lr", "train/speed_steps_per_s", "eval/auc"} <= set(reader.get_tags()["scalar"])
    losses = [(x.id, x.value) for x in reader.get_data("scalar", "train/loss")]
    assert [s for s, _ in losses] == list(range(1, result["global_step"] + 1))
    np.testing.assert_allclose([v for _, v in losses], result["losses"], rtol=1e-6)
    aucs = [x.value for x in reader.get_data("scalar", "eval/auc")]
    assert len(aucs) == result["global_step"] // 16 and max(aucs) == pytest.approx(result["best_metric"], abs=1e-6)
    assert (logdir / "curves.png").stat().st_size > 1000


def test_checkpoint_layout(trained):
    kind, save_dir, result = trained
    last = result["last_checkpoint"]
    assert os.path.basename(last) == f"model_{result['global_step']}"
    for f in ("model_state.pdparams", "model_state.pdopt", "training_state.json", "ranker.json", "vocab.txt"):
        assert os.path.isfile(os.path.join(last, f)), f
    assert any(os.path.isfile(os.path.join(last, c)) for c in ("config.json", "model_config.json"))
    assert json.load(open(os.path.join(last, "ranker.json")))["kind"] == kind.replace("_mean", "")
    assert os.path.isdir(save_dir / "model_best")
    assert not [d for d in os.listdir(save_dir) if d.startswith(".")]  # no half-written temporaries


def test_evaluate_and_predict_agree(trained, small, tmp_path):
    kind, save_dir, result = trained
    _, _, eval_mod, pred_mod, _, _, _ = KINDS[kind]
    ckpt = result["last_checkpoint"]
    metrics = mod(eval_mod).main(
        [
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
    assert json.load(open(tmp_path / "m.json"))["auc"] == pytest.approx(metrics["auc"])
    extra = ["--topk", "1000"] if kind.startswith("cross_encoder") else []
    preds = mod(pred_mod).main(
        [
            "--params_path",
            os.path.join(ckpt, "model_state.pdparams"),
            "--input_file",
            small["dev"],
            "--max_seq_length",
            "48",
            "--output_file",
            str(tmp_path / "p.tsv"),
            *extra,
        ]
    )
    keys = ("text_a", "text_b") if kind.startswith("cross_encoder") else ("query", "title")
    rows = read_labeled_pairs(small["dev"])
    label = {(r["query"], r["title"]): r["label"] for r in rows}
    got = auc([label[(p[keys[0]], p[keys[1]])] for p in preds], [p["pred_prob"] for p in preds])
    assert got == pytest.approx(metrics["auc"], abs=1e-6)
    lines = open(tmp_path / "p.tsv", encoding="utf-8").read().splitlines()
    assert len(lines) == len(rows) and all(len(l.split("\t")) == 3 for l in lines)
    if kind.startswith("cross_encoder"):
        probs = [p["pred_prob"] for p in preds]
        assert probs == sorted(probs, reverse=True)


def test_static_graph_matches_dynamic(trained, small, tmp_path):
    kind, save_dir, result = trained
    _, common, _, _, export_script, _, _ = KINDS[kind]
    ckpt = result["last_checkpoint"]
    out = tmp_path / "exported"
    run([export_script, "--params_path", ckpt, "--output_path", str(out)])
    assert (out / "inference.pdiparams").is_file()
    model, tokenizer, _, _ = mod(common).build(None, params_path=ckpt)
    model.eval()
    rows = read_labeled_pairs(small["dev"])[:40]
    enc = PairEncoder(tokenizer, 48)
    e = [enc(r["query"], r["title"]) for r in rows]
    ids, tts = pad([x[0] for x in e]), pad([x[1] for x in e])
    import paddle

    dynamic = model.predict(paddle.to_tensor(ids), paddle.to_tensor(tts)).numpy()
    static = PaddlePredictor(str(out), cpu_threads=1).run(input_ids=ids, token_type_ids=tts)
    assert static.shape == (len(rows),)
    assert ((static >= 0) & (static <= 1)).all()
    np.testing.assert_allclose(static, dynamic, atol=1e-5)
    assert float(np.std(static)) > 0  # a real score, not a constant


def test_pairwise_loss_row_pairs_and_graded_in_batch_pairs(tiny_model):
    """Without labels: PaddleNLP's margin loss over each row's (title, neg_title). With graded labels:
    the hinge over every two rows of the batch whose labels differ, queries mixed."""
    import paddle

    from ernie_matching.common import build

    model, tok, _, _ = build(tiny_model, margin=0.1, dropout=0.0)
    model.eval()
    rng = np.random.RandomState(0)
    vocab = tok.vocab_size if hasattr(tok, "vocab_size") else 50
    pos = paddle.to_tensor(rng.randint(5, vocab, size=(4, 12)).astype("int64"))
    neg = paddle.to_tensor(rng.randint(5, vocab, size=(4, 9)).astype("int64"))
    p = model.predict(pos).numpy()
    n = model.predict(neg).numpy()
    want = np.maximum(0, 0.1 - (p - n)).mean()
    np.testing.assert_allclose(float(model(pos, neg)), want, rtol=1e-5, atol=1e-6)

    pos_labels, neg_labels = np.array([3, 2, 3, 1]), np.array([2, 0, 1, 0])
    scores, grades = np.concatenate([p, n]), np.concatenate([pos_labels, neg_labels])
    hinges = [max(0.0, 0.1 - (scores[a] - scores[b])) for a in range(8) for b in range(8) if grades[a] > grades[b]]
    got = float(model(pos, neg, pos_labels=paddle.to_tensor(pos_labels), neg_labels=paddle.to_tensor(neg_labels)))
    np.testing.assert_allclose(got, np.mean(hinges), rtol=1e-5, atol=1e-6)
    assert len(hinges) > 4  # more pairs than the rows alone give


def short_pairwise_run(small, tiny_model):
    """Flags of a 3-step pairwise run on the small dev slice."""
    return [
        "--test_file",
        small["dev"],
        "--model_name_or_path",
        tiny_model,
        "--batch_size",
        "8",
        "--max_steps",
        "3",
        "--eval_step",
        "0",
        "--save_step",
        "0",
        "--max_seq_length",
        "32",
    ]


def test_pairwise_trains_on_paddlenlp_three_column_triples(small, tiny_model, tmp_path):
    from core.errors import DataError
    from ernie_matching.train_pairwise import main

    rows = open(small["pair_train"], encoding="utf-8").read().splitlines()
    three = tmp_path / "triples.csv"
    three.write_text("\n".join("\t".join(r.split("\t")[:3]) for r in rows) + "\n", encoding="utf-8")
    common = short_pairwise_run(small, tiny_model)
    result = main(["--train_file", str(three), "--save_dir", str(tmp_path / "a"), *common])
    assert result["global_step"] == 3 and all(np.isfinite(result["losses"]))
    with pytest.raises(DataError, match="needs the label and neg_label columns"):
        main(["--train_file", str(three), "--save_dir", str(tmp_path / "b"), "--in_batch_pairs", "on", *common])


def test_pairwise_trains_with_mined_hard_negatives(small, tiny_model, tmp_path, capsys):
    from core.data import read_pairwise_train
    from ernie_matching.train_pairwise import add_hard_negatives, main

    rows = read_pairwise_train(small["pair_train"])
    mined = tmp_path / "hard_negatives.tsv"
    r0 = rows[0]
    mined.write_text(
        "query\ttitle\tneg_title\n"
        f"{r0['query']}\t{r0['title']}\t一个被检索到的无关标题\n"  # a title the training file grades
        "一个新的问题\t一个新的标题\t另一个检索到的标题\n",  # a query it does not know
        encoding="utf-8",
    )
    graded = [dict(r) for r in rows]
    assert add_hard_negatives(graded, str(mined)) == 2
    assert graded[-2]["label"] == r0["label"] and graded[-2]["neg_label"] == 0
    assert graded[-1]["label"] == 2 and graded[-1]["neg_label"] == 0
    result = main(
        [
            "--train_file",
            small["pair_train"],
            "--hard_negatives_file",
            str(mined),
            "--save_dir",
            str(tmp_path / "run"),
            *short_pairwise_run(small, tiny_model),
        ]
    )
    assert "2 mined triples" in capsys.readouterr().out
    assert result["in_batch_pairs"] and all(np.isfinite(result["losses"]))
    with open(os.path.join(result["last_checkpoint"], "ranker.json")) as f:
        assert json.load(f)["objective"]["hard_negatives_file"] == str(mined)


def test_pairwise_starts_from_a_cross_encoder_with_its_scores(small, tiny_model, tmp_path, capsys):
    import paddle

    from core.errors import DataError
    from cross_encoder.common import build as build_ce
    from cross_encoder.train_ce import main as train_ce
    from ernie_matching.common import build
    from ernie_matching.train_pairwise import main

    ce = train_ce(
        ["--train_set", small["rank_train"], "--save_dir", str(tmp_path / "ce"), "--learning_rate", "2e-3",
         "--pooling", "mean", "--dropout", "0.0", *short_pairwise_run(small, tiny_model)]
    )["last_checkpoint"]  # fmt: skip
    rows = read_labeled_pairs(small["dev"])[:24]

    def scores(model, tokenizer):
        model.eval()
        enc = PairEncoder(tokenizer, 32)
        e = [enc(r["query"], r["title"]) for r in rows]
        with paddle.no_grad():
            return model.predict(paddle.to_tensor(pad([x[0] for x in e])), paddle.to_tensor(pad([x[1] for x in e])))

    expected = scores(*build_ce(None, params_path=ce)[:2]).numpy()
    assert expected.std() > 1e-3  # a trained head: scores that differ between pairs
    # learning rate 0: the saved pairwise model is the converted cross-encoder, scoring what it scored
    out = main(
        ["--train_file", small["pair_train"], "--save_dir", str(tmp_path / "pw"), "--init_weights", ce,
         "--learning_rate", "0", *short_pairwise_run(small, tiny_model)]
    )  # fmt: skip
    assert "is a cross-encoder's: its head starts as one logit" in capsys.readouterr().out and out["global_step"] == 3
    model, tokenizer, _, _ = build(None, params_path=out["last_checkpoint"])
    assert model.pooling == "mean"  # the cross-encoder's pooling, since --pooling was auto
    np.testing.assert_allclose(scores(model, tokenizer).numpy(), expected, rtol=1e-5, atol=1e-6)
    with open(os.path.join(out["last_checkpoint"], "ranker.json")) as f:
        meta = json.load(f)
    assert meta["kind"] == "pairwise" and meta["init_from_cross_encoder"] == ce
    with pytest.raises(DataError, match="pools with mean, not --pooling cls"):
        main(["--train_file", small["pair_train"], "--save_dir", str(tmp_path / "bad"), "--init_weights", ce,
              "--pooling", "cls", *short_pairwise_run(small, tiny_model)])  # fmt: skip
    # a pairwise model's own weights are no cross-encoder: named, not loaded half-way
    from core.errors import ModelLoadError
    from ernie_matching.common import init_from_cross_encoder

    with pytest.raises(ModelLoadError, match="no 2-class cross-encoder head"):
        init_from_cross_encoder(model, out["last_checkpoint"])

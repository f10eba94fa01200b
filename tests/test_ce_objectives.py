"""The cross-encoder on graded labels (--max_grade) and on mined hard negatives (--hard_negatives_file)."""

import json
import os

import numpy as np
import pytest
from conftest import head, run
from test_distill import common_args, logits_of

from core.data import read_labeled_pairs
from core.errors import DataError


def probabilities(ckpt, rows):
    logits, _ = logits_of(ckpt, rows)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e[:, 1] / e.sum(axis=1)


@pytest.fixture(scope="module")
def graded_file(data_dir, tmp_path_factory):
    return head(data_dir / "rank/train_graded.csv", tmp_path_factory.mktemp("graded") / "train_graded.csv", 161)


def train(small, tiny_model, save_dir, train_file, *extra):
    from cross_encoder.train_ce import main

    args = common_args(small, save_dir, 6)
    args[args.index("--train_set") + 1] = train_file
    return main(["--model_name_or_path", tiny_model, *args, *extra])


def test_graded_labels_train_a_probability_that_follows_the_grade(small, tiny_model, graded_file, tmp_path):
    out = train(small, tiny_model, tmp_path / "graded", graded_file, "--max_grade", "3")
    assert np.mean(out["losses"][-6:]) < np.mean(out["losses"][:6]), out["losses"]
    rows = read_labeled_pairs(graded_file, label_values=range(4))
    p = probabilities(out["last_checkpoint"], rows)
    grades = np.array([r["label"] for r in rows])
    means = [float(p[grades == g].mean()) for g in range(4)]
    assert means == sorted(means), means  # a higher grade, a higher probability
    # grade 1 ("somewhat relevant") is neither "irrelevant" nor "relevant": between the two
    assert means[0] < means[1] < means[3], means
    with open(os.path.join(out["last_checkpoint"], "ranker.json")) as f:
        assert json.load(f)["objective"] == {"max_grade": 3, "hard_negatives_file": None}


def test_gain_targets_train_the_expected_ndcg_gain(small, tiny_model, graded_file, tmp_path):
    graded = train(small, tiny_model, tmp_path / "graded", graded_file, "--max_grade", "3")
    out = train(small, tiny_model, tmp_path / "gain", graded_file, "--max_grade", "3", "--graded_target", "gain")
    assert np.mean(out["losses"][-6:]) < np.mean(out["losses"][:6]), out["losses"]
    # the same seed and batches: only the targets differ (grades 1, 2 aim at 1/7, 3/7 instead of 1/3, 2/3)
    assert out["losses"][0] != pytest.approx(graded["losses"][0], rel=1e-3)
    rows = read_labeled_pairs(graded_file, label_values=range(4))
    p, p_graded = probabilities(out["last_checkpoint"], rows), probabilities(graded["last_checkpoint"], rows)
    grades = np.array([r["label"] for r in rows])
    means = [float(p[grades == g].mean()) for g in range(4)]
    assert means[0] < means[3] and means[1] < means[3], means
    # a "somewhat relevant" title is pulled further from "fully relevant" than with grade / 3 targets
    assert float(p[grades == 1].mean()) < float(p_graded[grades == 1].mean())
    with open(os.path.join(out["last_checkpoint"], "ranker.json")) as f:
        objective = json.load(f)["objective"]
    assert objective == {"max_grade": 3, "hard_negatives_file": None, "graded_target": "gain"}


def test_a_grade_above_max_grade_is_named_by_file_and_line(small, tiny_model, graded_file, tmp_path):
    with pytest.raises(DataError, match=r"train_graded\.csv:\d+"):
        train(small, tiny_model, tmp_path / "binary", graded_file)  # default --max_grade 1: grades 2, 3 refused


def test_mined_negatives_join_as_label_0_rows(small, tiny_model, tmp_path, capsys):
    rows = read_labeled_pairs(small["rank_train"])
    titles = sorted({r["title"] for r in rows})
    labeled = {(r["query"], r["title"]) for r in rows}
    mined = tmp_path / "hard_negatives.tsv"
    new = []
    with open(mined, "w", encoding="utf-8") as f:
        f.write("query\ttitle\tneg_title\n")
        for r in rows[:20]:
            neg = next(t for t in titles[len(new) :] if (r["query"], t) not in labeled)
            new.append((r["query"], neg))
            f.write(f"{r['query']}\t{r['title']}\t{neg}\n")
        # a pair the training file labels: it keeps that label
        f.write(f"{rows[1]['query']}\t{rows[0]['title']}\t{rows[1]['title']}\n")
    out = train(small, tiny_model, tmp_path / "hard", small["rank_train"], "--hard_negatives_file", str(mined))
    printed = capsys.readouterr().out
    n_new = len(set(new))
    assert f"{n_new} mined negatives" in printed, printed
    assert f"{len(rows) + n_new} training pairs" in printed
    p = probabilities(out["last_checkpoint"], [{"query": q, "title": t} for q, t in new])
    pos = probabilities(out["last_checkpoint"], [r for r in rows[:20] if r["label"] == 1])
    assert p.mean() < pos.mean()  # the mined titles learnt as negatives

    bad = tmp_path / "bad.tsv"
    bad.write_text("a query\tonly two columns\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.tsv:1"):
        train(small, tiny_model, tmp_path / "bad", small["rank_train"], "--hard_negatives_file", str(bad))


def test_soft_labels_join_unlabelled_pairs_with_their_scores_as_targets(
    small, tiny_model, graded_file, tmp_path, capsys
):
    rows = read_labeled_pairs(graded_file, label_values=range(4))
    labeled = {(r["query"], r["title"]) for r in rows}
    queries, titles = sorted({r["query"] for r in rows}), sorted({r["title"] for r in rows})
    pairs = [(q, t) for q, t in zip(queries, titles[7:]) if (q, t) not in labeled][:24]
    high, low = pairs[::2], pairs[1::2]  # unlabelled pairs a teacher calls relevant / irrelevant
    soft = tmp_path / "teacher_scores.tsv"
    with open(soft, "w", encoding="utf-8") as f:
        f.writelines(f"{q}\t{t}\t{s}\n" for pairs_, s in ((high, 0.97), (low, 0.02)) for q, t in pairs_)
        f.write(f"{rows[0]['query']}\t{rows[0]['title']}\t0.5\n")  # a labelled pair keeps its label
    out = train(
        small,
        tiny_model,
        tmp_path / "soft",
        graded_file,
        "--max_grade",
        "3",
        "--soft_labels_file",
        str(soft),
        "--epochs",
        "20",
    )
    printed = capsys.readouterr().out
    assert f"{len(pairs)} pairs from {soft} join" in printed, printed
    assert f"{len(rows) + len(pairs)} training pairs" in printed
    assert np.mean(out["losses"][-6:]) < np.mean(out["losses"][:6]), out["losses"]
    p_high = probabilities(out["last_checkpoint"], [{"query": q, "title": t} for q, t in high])
    p_low = probabilities(out["last_checkpoint"], [{"query": q, "title": t} for q, t in low])
    assert p_high.mean() > 0.8 and p_low.mean() < 0.3, (p_high.mean(), p_low.mean())  # the scores were learnt
    with open(os.path.join(out["last_checkpoint"], "ranker.json")) as f:
        assert json.load(f)["objective"]["soft_labels_file"] == str(soft)

    bad = tmp_path / "bad_scores.tsv"
    bad.write_text(f"{high[0][0]}\t{high[0][1]}\t0.5\n{low[0][0]}\t{low[0][1]}\t1.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad_scores\.tsv:2: column 'score' is 1\.5"):
        train(small, tiny_model, tmp_path / "bad", graded_file, "--max_grade", "3", "--soft_labels_file", str(bad))
    with pytest.raises(SystemExit):  # the scores are probabilities: 0/1 cross-entropy cannot take them
        train(small, tiny_model, tmp_path / "binary", small["rank_train"], "--soft_labels_file", str(soft))
    assert "--soft_labels_file" in capsys.readouterr().err


def test_listwise_groups_put_a_graded_title_above_lower_graded_ones_of_its_query():
    from core.data import ranking_groups

    rows = [
        {"query": "q1", "title": "a", "label": 3},
        {"query": "q1", "title": "b", "label": 1},
        {"query": "q1", "title": "c", "label": 0},
        {"query": "q1", "title": "b", "label": 2},  # listed twice: counts once, at grade 2
        {"query": "q2", "title": "d", "label": 2},  # nothing lower in q2: no group
        {"query": "q3", "title": "e", "label": 0},
    ]
    groups = ranking_groups(rows, 3, seed=0)
    firsts = sorted((g["query"], g["titles"][0]) for g in groups)
    assert firsts == [("q1", ("a", 3)), ("q1", ("b", 2))]
    for g in groups:
        assert len(g["titles"]) == 3
        top = g["titles"][0][1]
        assert all(grade < top for _, grade in g["titles"][1:])
    b = next(g for g in groups if g["titles"][0][0] == "b")
    assert b["titles"][1:] == [("c", 0), ("c", 0)]  # fewer lower titles than slots: drawn again
    with pytest.raises(ValueError, match="at least 2"):
        ranking_groups(rows, 1)


def test_listwise_training_ranks_the_grades_of_a_query(small, tiny_model, graded_file, tmp_path, capsys):
    out = train(small, tiny_model, tmp_path / "listwise", graded_file, "--max_grade", "3", "--listwise", "3")
    assert "groups of 3 titles" in capsys.readouterr().out
    assert np.mean(out["losses"][-6:]) < np.mean(out["losses"][:6]), out["losses"]
    rows = read_labeled_pairs(graded_file, label_values=range(4))
    p = probabilities(out["last_checkpoint"], rows)
    grades = np.array([r["label"] for r in rows])
    assert p[grades >= 2].mean() > p[grades <= 1].mean()
    with open(os.path.join(out["last_checkpoint"], "ranker.json")) as f:
        assert json.load(f)["objective"]["listwise"] == 3
    with pytest.raises(SystemExit):
        train(small, tiny_model, tmp_path / "bad", graded_file, "--max_grade", "3", "--listwise", "1")


def test_init_weights_starts_a_fresh_run_from_a_trained_model(small, tiny_model, graded_file, tmp_path, capsys):
    import paddle

    from core.data import num_batches

    binary = train(small, tiny_model, tmp_path / "binary", small["rank_train"])
    capsys.readouterr()
    # fine-tune the binary model on the graded labels; learning rate 0 keeps its weights exactly
    out = train(
        small,
        tiny_model,
        tmp_path / "graded",
        graded_file,
        "--max_grade",
        "3",
        "--init_weights",
        binary["last_checkpoint"],
        "--learning_rate",
        "0",
    )
    log = capsys.readouterr().out
    assert "initialised weights from" in log and "resumed" not in log
    rows = read_labeled_pairs(graded_file, label_values=range(4))
    assert out["global_step"] == 6 * num_batches(len(rows), 16, 1)  # its own steps, counted from 0
    a = paddle.load(os.path.join(binary["last_checkpoint"], "model_state.pdparams"))
    b = paddle.load(os.path.join(out["last_checkpoint"], "model_state.pdparams"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    with pytest.raises(DataError, match="--init_from_ckpt .* --init_weights .* give one of them"):
        train(small, tiny_model, tmp_path / "both", graded_file, "--max_grade", "3", "--init_weights",
              binary["last_checkpoint"], "--init_from_ckpt", binary["last_checkpoint"])  # fmt: skip
    assert not (tmp_path / "both").exists() or not any((tmp_path / "both").glob("model_*"))
    fresh = train(small, tiny_model, tmp_path / "fresh", graded_file, "--max_grade", "3", "--learning_rate", "0")
    c = paddle.load(os.path.join(fresh["last_checkpoint"], "model_state.pdparams"))
    assert any(not np.array_equal(a[k].numpy(), c[k].numpy()) for k in a)  # without it: not the binary model


def test_freeze_embeddings_trains_everything_but_the_word_embeddings(small, tiny_model, graded_file, tmp_path, capsys):
    import paddle

    from core.trainer import freeze_word_embeddings

    binary = train(small, tiny_model, tmp_path / "binary", small["rank_train"])
    capsys.readouterr()
    out = train(small, tiny_model, tmp_path / "frozen", graded_file, "--max_grade", "3", "--init_weights",
                binary["last_checkpoint"], "--freeze_embeddings")  # fmt: skip
    assert "word-embedding weights kept as loaded" in capsys.readouterr().out
    assert np.mean(out["losses"][-6:]) < np.mean(out["losses"][:6]), out["losses"]
    a = paddle.load(os.path.join(binary["last_checkpoint"], "model_state.pdparams"))
    b = paddle.load(os.path.join(out["last_checkpoint"], "model_state.pdparams"))
    frozen = [k for k in a if k.endswith("word_embeddings.weight")]
    assert frozen
    for k in frozen:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    moved = [k for k in a if k not in frozen and not np.array_equal(a[k].numpy(), b[k].numpy())]
    assert len(moved) > len(a) // 2, moved  # the encoder layers and the scoring layer did train
    with pytest.raises(DataError, match="no word_embeddings weight"):
        freeze_word_embeddings(paddle.nn.Linear(2, 2))


def test_ema_decay_saves_the_weight_average_and_resumes_it(small, tiny_model, graded_file, tmp_path, capsys):
    """--ema_decay D: model_N_ema holds avg_t = d_t * avg_{t-1} + (1 - d_t) * w_t over the trained
    weights w_t of every step, d_t = min(D, (1 + t) / (10 + t)), from the loaded weights; a resumed
    run continues the same average."""
    import paddle

    def weights(ckpt):
        return {k: v.numpy() for k, v in paddle.load(os.path.join(ckpt, "model_state.pdparams")).items()}

    def cli(save_dir, *extra):  # each run in a process of its own, as users run it (and resume it)
        args = common_args(small, save_dir, 6)
        args[args.index("--train_set") + 1] = graded_file
        return run(["cross_encoder/train_ce.py", "--model_name_or_path", tiny_model, *args, "--max_grade", "3",
                    "--max_steps", "8", *extra]).stdout  # fmt: skip

    start = train(small, tiny_model, tmp_path / "start", graded_file, "--max_grade", "3", "--max_steps", "2")
    log = cli(tmp_path / "ema", "--init_weights", start["last_checkpoint"], "--save_step", "1", "--ema_decay", "0.8")
    assert "weight average starts from the loaded weights" in log
    avg = weights(start["last_checkpoint"])
    for t in range(1, 9):
        d = min(0.8, (1 + t) / (10 + t))
        w = weights(tmp_path / "ema" / f"model_{t}")
        avg = {k: d * avg[k] + (1 - d) * w[k] for k in w}
    ema, last = weights(tmp_path / "ema" / "model_8_ema"), weights(tmp_path / "ema" / "model_8")
    assert ema.keys() == avg.keys()
    for k in avg:
        np.testing.assert_allclose(ema[k], avg[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert any(not np.allclose(ema[k], last[k]) for k in ema)  # an average, not the last weights
    rows = read_labeled_pairs(graded_file, label_values=range(4))[:8]
    assert np.isfinite(probabilities(str(tmp_path / "ema" / "model_8_ema"), rows)).all()  # a checkpoint as any other

    log = cli(tmp_path / "resumed", "--init_from_ckpt", str(tmp_path / "ema" / "model_4"), "--ema_decay", "0.8")
    assert "weight average resumed from" in log
    again = weights(tmp_path / "resumed" / "model_8_ema")
    for k in avg:
        np.testing.assert_allclose(again[k], ema[k], rtol=1e-5, atol=1e-6, err_msg=k)
    with pytest.raises(SystemExit):
        train(small, tiny_model, tmp_path / "bad", graded_file, "--ema_decay", "1")
    assert "--ema_decay: must be from 0 (off) to below 1, got 1" in capsys.readouterr().err


def test_a_run_resumes_only_with_the_freeze_flag_it_was_trained_with(small, tiny_model, graded_file, tmp_path):
    """Frozen word embeddings have no optimizer state: resuming such a run without --freeze_embeddings
    (or an unfrozen run with it) is refused with the flag named, and the checkpoint is left as it was."""

    def cli(save_dir, *extra, check=True):
        args = common_args(small, save_dir, 6)
        args[args.index("--train_set") + 1] = graded_file
        cmd = ["cross_encoder/train_ce.py", "--model_name_or_path", tiny_model, *args, "--max_grade", "3"]
        return run([*cmd, "--max_steps", "8", "--save_step", "4", *extra], check=check)

    cli(tmp_path / "frozen", "--freeze_embeddings")
    cli(tmp_path / "plain")
    before = sorted(os.listdir(tmp_path / "frozen" / "model_4"))
    for src, flags, was in (("frozen", (), "with"), ("plain", ("--freeze_embeddings",), "without")):
        r = cli(tmp_path / "again", "--init_from_ckpt", str(tmp_path / src / "model_4"), *flags, check=False)
        assert r.returncode == 2, r.stderr[-2000:]
        assert f"that run was trained {was} --freeze_embeddings" in r.stderr and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path / "frozen" / "model_4")) == before
    r = cli(tmp_path / "again", "--init_from_ckpt", str(tmp_path / "frozen" / "model_4"), "--freeze_embeddings")
    assert "resumed from" in r.stdout and "at global step 4" in r.stdout


def test_interpolate_writes_the_weighted_average_of_two_checkpoints(small, tiny_model, graded_file, tmp_path):
    """core.checkpoint.interpolate: every weight is the weighted sum of the sources' (WiSE-FT between a
    model and its fine-tuned copy); the result is a checkpoint like any other; a checkpoint of another
    model, weights that do not sum to 1 and writing over a source are refused, the sources untouched."""
    import paddle

    from core.checkpoint import interpolate
    from core.errors import ModelLoadError

    a = train(small, tiny_model, tmp_path / "a", small["rank_train"], "--max_steps", "3")["last_checkpoint"]
    b = train(small, tiny_model, tmp_path / "b", graded_file, "--max_grade", "3", "--init_weights", a)[
        "last_checkpoint"
    ]
    out = interpolate([a, b], [0.25, 0.75], str(tmp_path / "mix"))
    wa, wb, mix = (paddle.load(os.path.join(d, "model_state.pdparams")) for d in (a, b, out))
    assert mix.keys() == wa.keys()
    for k in wa:
        np.testing.assert_allclose(mix[k].numpy(), 0.25 * wa[k].numpy() + 0.75 * wb[k].numpy(), rtol=1e-6, atol=1e-7)
    assert not os.path.exists(os.path.join(out, "model_state.pdopt"))  # weights only
    rows = read_labeled_pairs(graded_file, label_values=range(4))[:8]
    pa, pb, pm = (probabilities(d, rows) for d in (a, b, out))
    assert np.isfinite(pm).all() and not np.allclose(pm, pa) and not np.allclose(pm, pb)
    other = paddle.nn.Linear(2, 2)
    paddle.save(other.state_dict(), str(tmp_path / "other.pdparams"))
    with pytest.raises(ModelLoadError, match="not the same model"):
        interpolate([a, str(tmp_path / "other.pdparams")], [0.5, 0.5], str(tmp_path / "bad"))
    with pytest.raises(ModelLoadError, match="sum to 1"):
        interpolate([a, b], [0.5, 0.6], str(tmp_path / "bad"))
    with pytest.raises(ModelLoadError, match="is one of the checkpoints averaged"):
        interpolate([a, b], [0.5, 0.5], b)
    np.testing.assert_array_equal(paddle.load(os.path.join(b, "model_state.pdparams"))[k].numpy(), wb[k].numpy())
    r = run(["cross_encoder/interpolate.py", "--checkpoints", a, b, "--weights", "0.25", "0.75", "--output_path",
             str(tmp_path / "cli")])  # fmt: skip
    assert "wrote" in r.stdout
    np.testing.assert_array_equal(
        paddle.load(str(tmp_path / "cli" / "model_state.pdparams"))[k].numpy(), mix[k].numpy()
    )
    r = run(["cross_encoder/interpolate.py", "--checkpoints", a, b, "--weights", "0.5", "--output_path",
             str(tmp_path / "cli2")], check=False)  # fmt: skip
    assert r.returncode == 2 and "one weight each" in r.stderr and "Traceback" not in r.stderr


def test_ensemble_scores_average_rankers_on_the_first_rankers_scale(tmp_path, capsys):
    """cross_encoder/ensemble_scores.py: a later ranker's scores keep their order but take the first
    ranker's values (quantile mapping), the output is the mean; files of other pairs are refused."""
    from cross_encoder.ensemble_scores import main, quantile_map

    rng = np.random.RandomState(0)
    first = rng.beta(0.3, 2.0, size=200)  # a probability, mostly near 0
    second = 10 * rng.rand(200) - 5  # a logit-like score on another scale, in another order
    mapped = quantile_map(second, first)
    np.testing.assert_array_equal(np.argsort(mapped), np.argsort(second))  # the order is the second's
    assert mapped.min() >= first.min() and mapped.max() <= first.max()
    np.testing.assert_allclose(np.sort(mapped), np.quantile(first, (np.arange(200) + 0.5) / 200))
    np.testing.assert_allclose(
        quantile_map(first, first), np.quantile(first, (np.argsort(np.argsort(first)) + 0.5) / 200)
    )
    ref = [0.0, 0.5, 1.0]  # ties take their ranks in input order: the first 2.0 ranks 1, the second 2
    np.testing.assert_allclose(quantile_map([2.0, 1.0, 2.0], ref), np.quantile(ref, [3 / 6, 1 / 6, 5 / 6]))

    pairs = [(f"query {i // 4}", f"title {i}") for i in range(200)]
    files = []
    for name, scores in (("a", first), ("b", second)):
        files.append(tmp_path / f"{name}.tsv")
        files[-1].write_text("".join(f"{q}\t{t}\t{s}\n" for (q, t), s in zip(pairs, scores)), encoding="utf-8")
    out = tmp_path / "teacher.tsv"
    main(["--scores", str(files[0]), str(files[1]), "--output", str(out)])
    assert "200 pairs: the mean of 2 rankers' scores" in capsys.readouterr().out
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(q, t) for q, t, _ in rows] == pairs
    np.testing.assert_allclose([float(s) for *_, s in rows], (first + mapped) / 2, atol=1e-6)

    files[1].write_text("".join(f"{q}\t{t} (other)\t0.5\n" for q, t in pairs), encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.tsv: pair 1 is not .*a\.tsv's pair 1"):
        main(["--scores", str(files[0]), str(files[1]), "--output", str(out)])
    files[1].write_text("query 0\ttitle 0\t0.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.tsv: 1 pairs, .*a\.tsv has 200"):
        main(["--scores", str(files[0]), str(files[1]), "--output", str(out)])
    with pytest.raises(SystemExit):
        main(["--scores", str(files[0]), "--output", str(out)])

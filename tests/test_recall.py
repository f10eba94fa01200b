"""The recall module: dual-encoder training, export, Milvus index, recall@K, search, bad input."""

import json
import os

import numpy as np
import pytest
from conftest import ROOT, head, run


@pytest.fixture(scope="module")
def recall_data(data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("recall_data")
    train = head(data_dir / "recall/train.csv", d / "train.csv", 96)
    dev = head(data_dir / "recall/dev.csv", d / "dev.csv", 48)
    titles = [l.rstrip("\n").split("\t")[1] for l in open(dev, encoding="utf-8")]
    titles += [l.rstrip("\n").split("\t")[1] for l in open(train, encoding="utf-8")][:80]
    corpus = d / "corpus.csv"
    corpus.write_text("".join(t + "\n" for t in dict.fromkeys(titles)), encoding="utf-8")
    simcse = d / "simcse.csv"
    simcse.write_text("".join(t + "\n" for t in list(dict.fromkeys(titles))[:64]), encoding="utf-8")
    return {"train": train, "dev": dev, "corpus": str(corpus), "simcse": str(simcse), "dir": d}


def losses(stdout):
    return [float(l.split("loss: ")[1].split(",")[0]) for l in stdout.splitlines() if l.startswith("global step")]


@pytest.fixture(scope="module")
def trained(recall_data, tiny_model, tmp_path_factory):
    save = tmp_path_factory.mktemp("batch_neg")
    p = run(
        [
            "recall/train_batch_neg.py",
            "--train_set_file",
            recall_data["train"],
            "--save_dir",
            str(save),
            "--model_name_or_path",
            tiny_model,
            "--pooling",
            "mean",
            "--batch_size",
            "16",
            "--epochs",
            "8",
            "--learning_rate",
            "2e-3",
            "--max_seq_length",
            "32",
            "--margin",
            "0.1",
            "--scale",
            "20",
            "--output_emb_size",
            "64",
            "--log_steps",
            "6",
            "--save_steps",
            "1000",
            "--evaluate",
            "--similar_text_pair_file",
            recall_data["dev"],
            "--corpus_file",
            recall_data["corpus"],
            "--eval_steps",
            "24",
            "--recall_num",
            "10",
        ],
        timeout=600,
    )
    export = tmp_path_factory.mktemp("encoder") / "export"
    run(["recall/export_model.py", "--params_path", str(save / "model_48"), "--output_path", str(export), "--onnx"])
    return {"save": save, "stdout": p.stdout, "export": str(export)}


def test_in_batch_negative_training_lowers_the_loss_and_reports_recall(trained):
    ls = losses(trained["stdout"])
    assert len(ls) == 8
    assert np.mean(ls[-2:]) < 0.7 * np.mean(ls[:2]), ls
    assert "recall eval: recall@1=" in trained["stdout"] and "eval_dev recall@10:" in trained["stdout"]
    assert os.path.isdir(trained["save"] / "model_best")
    meta = json.load(open(trained["save"] / "model_48" / "ranker.json"))
    assert meta["kind"] == "encoder" and meta["output_emb_size"] == 64 and meta["objective"] == "in_batch_negatives"


def test_exported_encoder_matches_the_dynamic_graph(trained, recall_data):
    import paddle

    from core.data import TextEncoder, pad
    from core.engine import EncoderEngine
    from recall.model import build

    texts = ["感冒吃什么药", "宝宝发烧怎么办", "how to treat a cold"]
    model, tokenizer, _, meta = build(None, params_path=str(trained["save"] / "model_48"))
    model.eval()
    enc = TextEncoder(tokenizer, 32, meta["query_prefix"]).many(texts)
    with paddle.no_grad():
        dyn = model(
            paddle.to_tensor(pad([e[0] for e in enc], tokenizer.pad_token_id)),
            paddle.to_tensor(pad([e[1] for e in enc])),
        ).numpy()
    for backend in ("paddle", "onnxruntime"):
        engine = EncoderEngine(trained["export"], backend=backend, max_seq_length=32, cpu_threads=1)
        got = engine.embed(texts, "query")
        assert got.shape == (3, 64)
        np.testing.assert_allclose(got, dyn, atol=1e-5)
        assert engine.backend.output_names[0] == "output_embedding" if backend == "onnxruntime" else True
    from paddle import inference

    cfg = inference.Config(
        os.path.join(trained["export"], "inference.json"), os.path.join(trained["export"], "inference.pdiparams")
    )
    assert inference.create_predictor(cfg).get_output_names() == ["output_embedding"]


def test_index_recall_and_evaluate_agree_with_brute_force(trained, recall_data, tmp_path):
    from core.data import read_corpus
    from core.engine import EncoderEngine
    from recall.training import read_relevant, recall_report

    uri = str(tmp_path / "milvus.db")
    p = run(
        [
            "recall/build_index.py",
            "--model_dir",
            trained["export"],
            "--corpus_file",
            recall_data["corpus"],
            "--milvus_uri",
            uri,
            "--collection",
            "titles",
            "--index_type",
            "FLAT",
            "--max_seq_length",
            "32",
            "--output_emb_file",
            str(tmp_path / "corpus.npy"),
        ]
    )
    corpus = read_corpus(recall_data["corpus"])
    assert f"{len(corpus)} rows, dim 64" in p.stdout and "docs/s" in p.stdout
    run(
        [
            "recall/run_recall.py",
            "--model_dir",
            trained["export"],
            "--similar_text_pair_file",
            recall_data["dev"],
            "--milvus_uri",
            uri,
            "--collection",
            "titles",
            "--recall_result_dir",
            str(tmp_path),
            "--recall_num",
            "20",
            "--max_seq_length",
            "32",
        ]
    )
    lines = open(tmp_path / "recall_result.txt", encoding="utf-8").read().splitlines()
    queries, relevant = read_relevant(recall_data["dev"])
    assert len(lines) == 20 * len(queries) and all(len(l.split("\t")) == 3 for l in lines)
    out = tmp_path / "metrics.json"
    run(
        [
            "recall/evaluate.py",
            "--similar_text_pair_file",
            recall_data["dev"],
            "--recall_result_file",
            str(tmp_path / "recall_result.txt"),
            "--recall_num",
            "20",
            "--output",
            str(out),
        ]
    )
    got = json.load(open(out))
    # brute force over the saved corpus embeddings
    engine = EncoderEngine(trained["export"], max_seq_length=32, cpu_threads=1)
    docs = np.load(tmp_path / "corpus.npy")
    q = engine.embed(queries, "query")
    top = np.argsort(-(q @ docs.T), axis=1, kind="stable")[:, :20]
    want = recall_report([[corpus[j] for j in row] for row in top], relevant)
    for k in ("recall@1", "recall@5", "recall@10", "recall@20", "mrr@10"):
        assert abs(got[k] - want[k]) < 0.02, (k, got, want)
    assert got["recall@20"] >= got["recall@5"] >= got["recall@1"] > 0


@pytest.fixture(params=["lite", "server"])
def milvus_uri(request, tmp_path):
    """A Milvus Lite file, or a Milvus gRPC server (milvus-lite's) reached by http:// like any Milvus."""
    if request.param == "lite":
        yield str(tmp_path / "m.db")
        return
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "served.db"), host="127.0.0.1", port=0)
    yield f"http://127.0.0.1:{port}"
    server.stop(grace=1)
    db.close()


def test_rebuild_keeps_the_old_index_until_the_new_one_is_complete(milvus_uri):
    from core.index import MilvusIndex

    rng = np.random.RandomState(0)
    old_texts = [f"old {i}" for i in range(40)]
    new_texts = [f"new {i}" for i in range(60)]
    vec = {t: v / np.linalg.norm(v) for t, v in zip(old_texts + new_texts, rng.randn(100, 8).astype("float32"))}

    def embed(chunk):
        return np.stack([vec[t] for t in chunk])

    index = MilvusIndex(milvus_uri, "docs")
    assert not index.exists()
    index.build(old_texts, embed, 8, batch_size=16)
    assert index.info()["rows"] == 40
    seen = []

    def failing(chunk):
        # mid-rebuild: the alias still answers from the old collection
        seen.append(index.search(vec["old 3"], 1)[0][0].text)
        if len(seen) == 2:
            raise RuntimeError("encoder crashed")
        return embed(chunk)

    with pytest.raises(RuntimeError):
        index.build(new_texts, failing, 8, batch_size=16)
    assert seen == ["old 3", "old 3"]
    info = index.info()
    assert info["rows"] == 40 and len(index.client.list_collections()) == 1
    index.build(new_texts, embed, 8, batch_size=16)
    assert index.info()["rows"] == 60 and len(index.client.list_collections()) == 1
    hits = index.search(np.stack([vec["new 7"], vec["new 9"]]), 3)
    assert [h[0].text for h in hits] == ["new 7", "new 9"] and abs(hits[0][0].similarity - 1) < 1e-4
    index.close()


BUILD = """
import json, sys, time
import numpy as np
from core.index import MilvusIndex
index = MilvusIndex(sys.argv[1], "docs")
vec = np.eye(8, dtype="float32")
if sys.argv[2] == "inspect":
    hit = index.search(vec[3], 1)[0][0].text
    print(json.dumps({"live": index.info()["collection"], "hit": hit, "stale": index.stale(),
                      "all": sorted(index.client.list_collections())}), flush=True)
    sys.exit(0)
def embed(chunk):
    if sys.argv[2] == "killed" and chunk[0] != "old 0":
        print("inserted", flush=True)
        time.sleep(600)  # killed here, half-built
    return vec[[int(t.split()[1]) % 8 for t in chunk]]
index.build([f"old {i}" for i in range(64)], embed, 8, batch_size=16)
print("built", flush=True)
"""


def test_a_killed_build_leaves_nothing_behind_after_the_next_build(milvus_uri):
    import signal
    import subprocess
    import sys

    def step(mode):  # each in its own process: Milvus Lite lets one process hold the file at a time
        return subprocess.Popen(
            [sys.executable, "-c", BUILD, milvus_uri, mode],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, PYTHONPATH=ROOT),
        )

    def inspect():
        p = step("inspect")
        out = json.loads(p.stdout.readline())
        assert p.wait(timeout=120) == 0
        return out

    assert step("whole").wait(timeout=120) == 0
    before = inspect()
    assert before["stale"] == [] and before["all"] == [before["live"]]
    killed = step("killed")
    assert killed.stdout.readline().strip() == "inserted"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    after_kill = inspect()
    assert after_kill["live"] == before["live"] and int(after_kill["hit"].split()[1]) % 8 == 3  # old index answers
    assert len(after_kill["stale"]) == 1 and after_kill["stale"][0] != before["live"]  # the half-built collection
    assert step("whole").wait(timeout=120) == 0
    final = inspect()
    assert final["all"] == [final["live"]] and final["live"] not in (before["live"], after_kill["stale"][0])
    assert int(final["hit"].split()[1]) % 8 == 3


def test_corpus_rows_over_the_index_limit_are_named_by_file_and_line(tmp_path):
    from core.data import read_corpus
    from core.errors import DataError
    from core.index import TEXT_MAX_BYTES

    corpus = tmp_path / "corpus.csv"
    corpus.write_text("short\n" + "长" * (TEXT_MAX_BYTES // 3 + 1) + "\nalso short\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"{corpus}:2: .*bytes in UTF-8; the index holds at most {TEXT_MAX_BYTES}"):
        read_corpus(str(corpus), TEXT_MAX_BYTES)


def test_simcse_trains_on_single_texts_and_lowers_the_loss(recall_data, tiny_model, tmp_path):
    p = run(
        [
            "recall/train_simcse.py",
            "--train_set_file",
            recall_data["simcse"],
            "--save_dir",
            str(tmp_path),
            "--model_name_or_path",
            tiny_model,
            "--pooling",
            "mean",
            "--batch_size",
            "16",
            "--epochs",
            "6",
            "--learning_rate",
            "2e-3",
            "--max_seq_length",
            "32",
            "--dropout",
            "0.1",
            "--dup_rate",
            "0.3",
            "--logging_steps",
            "4",
            "--eval_step",
            "0",
        ],
        timeout=600,
    )
    ls = losses(p.stdout)
    assert np.mean(ls[-2:]) < np.mean(ls[:2]), ls
    meta = json.load(open(tmp_path / "model_24" / "ranker.json"))
    assert meta["objective"] == "simcse"


def test_batch_neg_two_process_data_parallel(recall_data, tiny_model, tmp_path):
    logs = tmp_path / "log"
    run(
        [
            "-m",
            "paddle.distributed.launch",
            "--nproc_per_node",
            "2",
            "--log_dir",
            str(logs),
            "recall/train_batch_neg.py",
            "--train_set_file",
            recall_data["train"],
            "--model_name_or_path",
            tiny_model,
            "--save_dir",
            str(tmp_path / "ckpt"),
            "--batch_size",
            "8",
            "--max_steps",
            "4",
            "--max_seq_length",
            "32",
            "--save_steps",
            "0",
            "--eval_steps",
            "0",
            "--log_steps",
            "2",
        ],
        timeout=300,
    )
    digests = [
        open(logs / f"workerlog.{r}", encoding="utf-8").read().split(f"rank {r} weights digest:")[1].split()[0]
        for r in (0, 1)
    ]
    assert digests[0] == digests[1]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["model_4", "vdl_log"]


def test_bad_input_is_named_and_nothing_built_is_lost(trained, recall_data, tiny_model, tmp_path):
    uri = str(tmp_path / "m.db")
    common = ["--milvus_uri", uri, "--collection", "titles", "--max_seq_length", "32"]
    # index missing: the message says how to build it
    p = run(["recall/search.py", "--encoder_dir", trained["export"], "--query", "感冒", *common], check=False)
    assert p.returncode == 2 and "no index 'titles'" in p.stderr and "build_index" in p.stderr
    run(["recall/build_index.py", "--model_dir", trained["export"], "--corpus_file", recall_data["corpus"], *common])
    # a corpus with a bad row: named by file and line; the built index stays
    bad = tmp_path / "bad_corpus.csv"
    bad.write_text("第一行\n第二\t行\n", encoding="utf-8")
    p = run(
        ["recall/build_index.py", "--model_dir", trained["export"], "--corpus_file", str(bad), *common], check=False
    )
    assert p.returncode == 2 and f"{bad}:2" in p.stderr and "columns" in p.stderr
    notutf8 = tmp_path / "latin1.csv"
    notutf8.write_bytes("caf\xe9\n".encode("latin-1"))
    p = run(
        ["recall/build_index.py", "--model_dir", trained["export"], "--corpus_file", str(notutf8), *common], check=False
    )
    assert p.returncode == 2 and f"{notutf8}:1: not valid UTF-8" in p.stderr
    # empty query
    p = run(["recall/search.py", "--encoder_dir", trained["export"], "--query", "  ", *common], check=False)
    assert p.returncode == 2 and "query is empty" in p.stderr
    # an encoder of another dimension than the collection
    other = tmp_path / "other_encoder"
    run(["recall/export_model.py", "--model_name_or_path", tiny_model, "--output_path", str(other)])
    p = run(["recall/search.py", "--encoder_dir", str(other), "--query", "感冒", *common], check=False)
    assert p.returncode == 2 and "dim 32" in p.stderr and "64-dim" in p.stderr
    # the index survived all of it and answers
    p = run(
        ["recall/search.py", "--encoder_dir", trained["export"], "--query", "感冒", "--json", "--top_k", "3", *common]
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert len(res["results"]) == 3 and res["results"][0]["rank"] == 1


@pytest.fixture(scope="module")
def tiny_ranker(recall_data, tiny_model, tmp_path_factory):
    """A briefly trained tiny cross-encoder export (the denoiser of hard-negative mining)."""
    d = tmp_path_factory.mktemp("ranker")
    pairs = d / "rank.csv"
    rows = [l.rstrip("\n").split("\t") for l in open(recall_data["train"], encoding="utf-8")]
    lines = [f"{q}\t{t}\t1\n" for q, t in rows] + [
        f"{q}\t{rows[(i + 7) % len(rows)][1]}\t0\n" for i, (q, _) in enumerate(rows)
    ]
    pairs.write_text("".join(lines), encoding="utf-8")
    common = ["--max_seq_length", "32", "--batch_size", "16", "--eval_step", "0", "--dropout", "0.0"]
    run(
        [
            "cross_encoder/train_ce.py",
            "--model_name_or_path",
            tiny_model,
            "--train_set",
            str(pairs),
            "--test_file",
            str(pairs),
            "--save_dir",
            str(d / "ckpt"),
            "--max_steps",
            "6",
            "--learning_rate",
            "1e-3",
            *common,
        ]
    )
    run(
        [
            "cross_encoder/export_model.py",
            "--params_path",
            str(d / "ckpt" / "model_6"),
            "--output_path",
            str(d / "export"),
        ]
    )
    return str(d / "export")


def test_mine_negatives_drops_positives_denoises_resumes_and_feeds_the_pairwise_trainer(
    trained, recall_data, tiny_ranker, tmp_path
):
    from core.data import read_corpus, read_pairwise_train, read_tsv
    from core.engine import RankerEngine
    from recall.mine_negatives import read_positives

    uri = str(tmp_path / "milvus.db")
    index = ["--milvus_uri", uri, "--collection", "titles", "--max_seq_length", "32"]
    run(["recall/build_index.py", "--model_dir", trained["export"], "--corpus_file", recall_data["corpus"], *index])
    out = tmp_path / "hard.tsv"

    def mine(output, threshold):
        return run(
            [
                "recall/mine_negatives.py",
                "--model_dir",
                trained["export"],
                "--ranker_dir",
                tiny_ranker,
                "--train_file",
                recall_data["train"],
                "--output",
                str(output),
                "--recall_num",
                "10",
                "--negatives_per_query",
                "3",
                "--denoise_threshold",
                str(threshold),
                *index,
            ]
        )

    p = mine(out, 1.0)
    assert "mined" in p.stdout and "mining" in p.stdout  # summary and progress bar
    positives = read_positives(recall_data["train"])
    corpus = set(read_corpus(recall_data["corpus"]))
    rows = read_pairwise_train(str(out))  # the pairwise trainer's reader takes the file as it is
    assert {r["query"] for r in rows} <= set(positives) and len(rows) > 0
    negs = {}
    for r in rows:
        assert r["title"] in positives[r["query"]] and r["neg_title"] not in positives[r["query"]]
        assert r["neg_title"] in corpus
        negs.setdefault(r["query"], set()).add(r["neg_title"])
    assert max(len(v) for v in negs.values()) == 3
    scores = read_tsv(str(out) + ".scores.tsv", ("query", "title", "score"), float_columns=("score",))
    ranker = RankerEngine(tiny_ranker, max_seq_length=32, cpu_threads=1)
    sample = scores[:20]
    np.testing.assert_allclose(
        [s["score"] for s in sample], ranker.score([(s["query"], s["title"]) for s in sample]), atol=1e-5
    )

    # interrupted: the last query's rows and a torn line are gone; a re-run writes the same rows, once
    full = out.read_text(encoding="utf-8")
    last = full.splitlines()[-1].split("\t")[0]
    kept = [l for l in full.splitlines() if not l.startswith(last + "\t")]
    out.write_text("\n".join(kept) + "\n" + last[:3], encoding="utf-8")
    p = mine(out, 1.0)
    assert "resuming" in p.stdout
    assert sorted(out.read_text(encoding="utf-8").splitlines()) == sorted(full.splitlines())

    # denoising: a threshold inside the scores' range drops the titles the ranker scores above it
    neg_scores = sorted(s["score"] for s in scores if s["title"] not in positives[s["query"]])
    cut = neg_scores[len(neg_scores) // 2]
    out2 = tmp_path / "denoised.tsv"
    p = mine(out2, cut)
    dropped = int(p.stdout.split("(")[-1].split()[0])
    assert dropped > 0
    for s in read_tsv(str(out2) + ".scores.tsv", ("query", "title", "score"), float_columns=("score",)):
        if s["title"] not in positives[s["query"]]:
            assert s["score"] < cut + 1e-6  # scores are written with 6 decimals


def hard_negative_files(recall_data, tmp_path):
    """The recall training rows, a hard negatives file (another row's title each) and its negatives."""
    rows = [l.rstrip("\n").split("\t") for l in open(recall_data["train"], encoding="utf-8")]
    negs = [rows[(i + 5) % len(rows)][1] for i in range(len(rows))]
    hard = tmp_path / "hard.tsv"
    hard.write_text("".join(f"{q}\t{t}\t{n}\n" for (q, t), n in zip(rows, negs)), encoding="utf-8")
    return rows, negs, hard


def batch_neg_args(recall_data, tiny_model, save_dir, *extra):
    return [
        "recall/train_batch_neg.py",
        "--train_set_file",
        recall_data["train"],
        "--model_name_or_path",
        tiny_model,
        "--pooling",
        "mean",
        "--batch_size",
        "16",
        "--epochs",
        "4",
        "--learning_rate",
        "2e-3",
        "--max_seq_length",
        "32",
        "--scale",
        "20",
        "--log_steps",
        "1",
        "--save_steps",
        "1000",
        "--seed",
        "3",
        "--save_dir",
        str(save_dir),
        *extra,
    ]


def test_batch_neg_trains_with_mined_hard_negatives(recall_data, tiny_model, tmp_path):
    """Each row's hard negative joins the softmax (more candidates: a higher first loss), and training lowers it."""
    rows, _, hard = hard_negative_files(recall_data, tmp_path)
    plain = run(batch_neg_args(recall_data, tiny_model, tmp_path / "plain"))
    mined = run(batch_neg_args(recall_data, tiny_model, tmp_path / "hard", "--hard_negatives_file", str(hard)))
    assert f"{len(rows)} of {len(rows)} training rows have one" in mined.stdout
    a, b = losses(plain.stdout), losses(mined.stdout)
    assert b[0] > a[0] + 0.3  # 32 candidates per query instead of 16 at the start
    assert np.mean(b[-4:]) < 0.7 * np.mean(b[:4])
    meta = json.load(open(tmp_path / "hard" / "model_24" / "ranker.json"))
    assert meta["objective"] == "in_batch_negatives+hard_negatives"


def test_batch_neg_distils_cross_encoder_margins(recall_data, tiny_model, tmp_path):
    """--teacher_scores_file adds margin-MSE towards the teacher's logit margins (first loss higher, then
    falls); a pair the teacher file does not score is named."""
    rows, negs, hard = hard_negative_files(recall_data, tmp_path)
    scores = tmp_path / "scores.tsv"
    scores.write_text("".join(f"{q}\t{t}\t0.9\n{q}\t{n}\t0.1\n" for (q, t), n in zip(rows, negs)), encoding="utf-8")

    def train(name):
        extra = ["--hard_negatives_file", str(hard)] + (
            ["--teacher_scores_file", str(scores)] if name != "plain" else []
        )
        return run(batch_neg_args(recall_data, tiny_model, tmp_path / name, *extra), check=name != "bad")

    plain, taught = train("plain"), train("taught")
    assert f"margin-MSE distillation on {len(rows)} rows" in taught.stdout
    a, b = losses(plain.stdout), losses(taught.stdout)
    assert b[0] > a[0] + 1.0  # the teacher's margin (2 * logit(0.9) = 4.4) is far from the untrained student's
    assert np.mean(b[-4:]) < 0.5 * np.mean(b[:4])
    meta = json.load(open(tmp_path / "taught" / "model_24" / "ranker.json"))
    assert meta["objective"] == "in_batch_negatives+hard_negatives+distillation"
    scores.write_text("".join(f"{q}\t{t}\t0.9\n" for q, t in rows), encoding="utf-8")  # negatives unscored
    p = train("bad")
    assert p.returncode == 2 and "no score for" in p.stderr and str(scores) in p.stderr


def test_recall_benchmark_dev_counts_every_judged_positive(data_dir, monkeypatch):
    """benchmarks/recall_quality.py reports dev queries twice: against dev.csv's titles, and against
    every title judged relevant for the query (train or dev), so titles relevant by train's labels are
    not counted as misses; the unseen split keeps only its own titles."""
    import argparse

    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    from recall_quality import kuake_set

    from recall.training import read_relevant

    ds = kuake_set(argparse.Namespace(data_dir=str(data_dir)))
    queries, all_judged = ds["more_query_sets"]["kuake_qtr_dev_all_judged"]
    assert queries is ds["queries"]
    train = dict(zip(*read_relevant(str(data_dir / "recall/train.csv"))))
    grown = 0
    for q, dev_rel, rel in zip(queries, ds["relevant"], all_judged):
        assert rel == dev_rel | train.get(q, set())
        grown += len(rel) > len(dev_rel)
    assert grown > len(queries) / 2  # most dev queries have relevant titles in train too
    unseen_q, unseen_rel = ds["more_query_sets"]["kuake_qtr_unseen"]
    assert not set(unseen_q) & set(train) and unseen_rel == read_relevant(str(data_dir / "recall/holdout.csv"))[1]
    assert "kuake_qtr_train_tune" not in ds["more_query_sets"]
    # --tune_queries: that many training queries, with their training positives, choose the fusion weight
    tune_q, tune_rel = kuake_set(argparse.Namespace(data_dir=str(data_dir), tune_queries=20))["more_query_sets"][
        "kuake_qtr_train_tune"
    ]
    assert len(set(tune_q)) == 20 and all(train[q] == rel for q, rel in zip(tune_q, tune_rel))


def test_recall_benchmark_end_to_end_orders_and_ceiling(served, tiny_model, tmp_path, monkeypatch):
    """benchmarks/recall_quality.py's end to end: NDCG@10 of the recall order, the ranker's and the
    fused order of each top 20, and the oracle (the same titles sorted by label), which no order
    exceeds; unjudged titles in each order's top 10 are counted, and each order of the judged titles alone
    is scored."""
    import argparse

    from conftest import CORPUS

    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    from recall_quality import (
        TUNE_SET,
        choose_k_and_weight,
        choose_weight,
        ensemble_scores,
        ndcg10,
        ranker_engine,
        rerank_ndcg,
        tune_weights,
    )

    from core.search import fuse_scores, rerank_order

    queries = ["感冒吃什么药", "头疼怎么办"]
    extra = ["流感的症状", "感冒发烧吃什么", "维生素C的作用", "感冒多喝水有用吗"]
    retrieved = [CORPUS + extra, extra[::-1] + CORPUS[::-1]]
    label = {(queries[0], extra[3]): 3, (queries[0], CORPUS[0]): 1, (queries[0], CORPUS[2]): 0}
    label.update({(queries[1], CORPUS[1]): 2, (queries[1], "a title not recalled"): 3})
    args = argparse.Namespace(rerank_queries=10, rerank_depth=20, recall_weights=[1.0, 0.5, 0.0], rrf_ks=[10, 1])
    out = rerank_ndcg({"queries": queries}, {"sys": retrieved}, args, label, served["exported"])
    m = out["systems"]["sys"]
    # the fusion at recall weight 1 is the default fused order, at 0 the ranker's order
    grid = m["ndcg@10_fused_by_recall_weight"]
    assert list(grid) == ["1.0", "0.5", "0.0"]
    assert grid["1.0"] == m["ndcg@10_fused"] and grid["0.0"] == m["ndcg@10_reranked"]
    # the weight is chosen on the tuning queries alone and applied as it is to the other set
    assert choose_weight({1.0: 0.5, 0.5: 0.7, 0.0: 0.7}) == 0.5  # a tie goes to the larger weight
    e2e = {
        "tune": dict(rerank_ndcg({"queries": queries[1:]}, {"sys": retrieved[1:]}, args, label, served["exported"])),
        "dev": dict(out),
    }
    e2e["tune"].update(query_set=TUNE_SET, ranker_name="")
    e2e["dev"].update(query_set="kuake_qtr", ranker_name="")
    tune_weights(e2e)
    w = choose_weight({float(k): v for k, v in e2e["tune"]["systems"]["sys"]["ndcg@10_fused_by_recall_weight"].items()})
    assert m["tuned_recall_weight"] == w and m["ndcg@10_fused_tuned"] == grid[str(w)]
    # each gain comes with its 95 % paired-bootstrap interval (points), which holds the gain itself
    ci = m["ndcg@10_gain_ci95_points"]
    for key, ndcg in (
        ("reranked", m["ndcg@10_reranked"]),
        ("fused", m["ndcg@10_fused"]),
        ("fused_tuned", grid[str(w)]),
    ):
        lo, hi = ci[key]
        assert lo - 0.01 <= 100 * (ndcg - m["ndcg@10_recall_order"]) <= hi + 0.01, (key, ci[key])
    # the k of the fusion: k = 10 is the weight grid above; k = 1 is scored with core.search.fuse itself
    by_k = m["ndcg@10_fused_by_rrf_k"]
    assert list(by_k) == ["10", "1"] and by_k["10"] == grid
    engine = ranker_engine(served["exported"])
    for w in (1.0, 0.5):
        want = []
        for q, cand in zip(queries, retrieved):
            order = rerank_order(engine.score([(q, t) for t in cand]), "fused", 1, w)[0]
            want.append(ndcg10([cand[j] for j in order], q, label))
        assert by_k["1"][str(w)] == pytest.approx(float(np.mean(want)), abs=1e-4)
    assert choose_k_and_weight({"10": {"1.0": 0.5, "0.5": 0.7}, "2": {"1.0": 0.7, "0.5": 0.6}}) == (2, 1.0)
    assert choose_k_and_weight({"2": {"1.0": 0.7}, "10": {"1.0": 0.7}}) == (10, 1.0)  # a tie: the default k
    k, w = choose_k_and_weight(e2e["tune"]["systems"]["sys"]["ndcg@10_fused_by_rrf_k"])
    assert m["tuned_rrf_k_and_weight"] == [k, w] and m["ndcg@10_fused_tuned_k"] == by_k[str(k)][str(w)]
    # the score fusion, w * minmax(recall similarity) + minmax(ranker score): w = 0 is the ranker's order
    sims = [list(np.linspace(0.9, 0.7, len(r)) ** (1 + i)) for i, r in enumerate(retrieved)]
    args.score_fusion_weights = [1.0, 0.3, 0.0]
    both = rerank_ndcg({"queries": queries}, {"sys": retrieved}, args, label, served["exported"], {"sys": sims})
    score_grid = both["systems"]["sys"]["ndcg@10_score_fusion_by_recall_weight"]
    assert list(score_grid) == ["1.0", "0.3", "0.0"] and score_grid["0.0"] == m["ndcg@10_reranked"]
    for w in (1.0, 0.3):
        want = []
        for q, cand, sim in zip(queries, retrieved, sims):
            order = fuse_scores(sim, engine.score([(q, t) for t in cand]), w)[0]
            want.append(ndcg10([cand[j] for j in order], q, label))
        assert score_grid[str(w)] == pytest.approx(float(np.mean(want)), abs=1e-4)
    assert "ndcg@10_score_fusion_by_recall_weight" not in m  # without similarities: no score fusion
    assert out["queries"] == 2
    # query 0: its best title is 12th in recall order; query 1 misses a judged title, so its ceiling is below 1
    assert ndcg10(retrieved[0], queries[0], label) < 1 and ndcg10([CORPUS[1]], queries[1], label) < 1
    assert m["ndcg@10_oracle"] == round((1.0 + ndcg10([CORPUS[1]], queries[1], label)) / 2, 4)
    for key in ("ndcg@10_recall_order", "ndcg@10_reranked", "ndcg@10_fused"):
        assert 0 < m[key] <= m["ndcg@10_oracle"]
    recall_order = np.mean([ndcg10(r, q, label) for q, r in zip(queries, retrieved)])
    assert m["ndcg@10_recall_order"] == round(float(recall_order), 4)
    # recall order's top 10: query 0 has 2 judged titles there (CORPUS[0], CORPUS[2]), query 1 none
    assert m["unjudged@10_recall"] == (8 + 10) / 2
    unjudged = []
    for q, cand in zip(queries, retrieved):
        order = rerank_order(engine.score([(q, t) for t in cand]), "ranker")[0]
        unjudged.append(sum((q, cand[j]) not in label for j in order[:10]))
    assert m["unjudged@10_ranker"] == round(float(np.mean(unjudged)), 2)
    # the judged titles alone, in recall order: query 0's CORPUS[0] (1), CORPUS[2] (0), extra[3] (3);
    # query 1's CORPUS[1] (2), the title it did not recall missing
    judged = [ndcg10([CORPUS[0], CORPUS[2], extra[3]], queries[0], label), ndcg10([CORPUS[1]], queries[1], label)]
    assert m["ndcg@10_judged_only_recall"] == round(float(np.mean(judged)), 4)
    assert m["ndcg@10_judged_only_recall"] > m["ndcg@10_recall_order"]  # query 0's best title moves up from 12th
    for key in ("recall", "ranker", "fused"):
        assert m[f"ndcg@10_judged_only_{key}"] <= m["ndcg@10_oracle"]
    # an ensemble "A+B" re-ranks by the mean of each ranker's scores min-max scaled over the list
    import paddle

    from core.exporting import export_static
    from ernie_matching.common import build

    paddle.seed(8)
    model, tokenizer, _, _ = build(tiny_model)
    other = str(tmp_path / "other")
    export_static(model, other)
    tokenizer.save_pretrained(other)
    assert ensemble_scores([[3.0, 1.0, 2.0], [0.5, 0.7, 0.6]]).tolist() == [0.5, 0.5, 0.5]
    assert ensemble_scores([[2.0, 2.0], [0.1, 0.3]]).tolist() == [0.0, 0.5]  # equal scores scale to 0
    assert ensemble_scores([[0.2, 0.9]]).tolist() == [0.2, 0.9]  # one ranker: its own scores
    ens = rerank_ndcg({"queries": queries}, {"sys": retrieved}, args, label, served["exported"] + "+" + other)
    other_engine = ranker_engine(other)
    want = {"ranker": [], "fused": []}
    for q, cand in zip(queries, retrieved):
        pairs = [(q, t) for t in cand]
        both_scores = [engine.score(pairs), other_engine.score(pairs)]
        assert not np.allclose(*both_scores)  # two different rankers
        scores = ensemble_scores(both_scores)
        for mode in want:
            want[mode].append(ndcg10([cand[j] for j in rerank_order(scores, mode)[0]], q, label))
    assert ens["systems"]["sys"]["ndcg@10_reranked"] == pytest.approx(float(np.mean(want["ranker"])), abs=1e-4)
    assert ens["systems"]["sys"]["ndcg@10_fused"] == pytest.approx(float(np.mean(want["fused"])), abs=1e-4)
    assert ens["reranker"].count("+") == 1


def test_batch_neg_freeze_embeddings_keeps_the_word_embeddings(recall_data, tiny_model, tmp_path):
    """--freeze_embeddings: the encoder still trains (loss falls, other weights move) while its word
    embeddings stay those of the backbone it loaded."""
    import glob

    import paddle

    out = run(batch_neg_args(recall_data, tiny_model, tmp_path / "frozen", "--freeze_embeddings"))
    assert "word-embedding weights kept as loaded" in out.stdout
    b = losses(out.stdout)
    assert np.mean(b[-4:]) < 0.7 * np.mean(b[:4])
    (loaded,) = glob.glob(os.path.join(tiny_model, "*.pdparams"))
    start, trained = paddle.load(loaded), paddle.load(str(tmp_path / "frozen" / "model_24" / "model_state.pdparams"))

    def by_suffix(state, suffix):
        (key,) = [k for k in state if k.endswith(suffix)]
        return state[key].numpy()

    suffix = "word_embeddings.weight"
    np.testing.assert_array_equal(by_suffix(start, suffix), by_suffix(trained, suffix))
    moved = "layer_norm.weight"  # the embeddings' LayerNorm trains
    assert not np.array_equal(by_suffix(start, "embeddings." + moved), by_suffix(trained, "embeddings." + moved))


def test_recall_benchmark_refuses_a_missing_ranker_before_any_work(tmp_path):
    """A --reranker_dir (or an ensemble member of it) or --more_rerankers that is not there stops the
    benchmark at once, naming the flag, instead of silently leaving the end-to-end rows out."""
    out, work = tmp_path / "results", tmp_path / "work"
    bench = os.path.join(ROOT, "benchmarks", "recall_quality.py")
    base = [bench, "--systems", "zero_shot_e5", "--out", str(out), "--work_dir", str(work)]
    missing = tmp_path / "missing"
    for flags, named in [
        (["--reranker_dir", f"{tmp_path}+{missing}"], f"--reranker_dir {tmp_path}+{missing}:"),
        (
            ["--reranker_dir", str(tmp_path), "--more_rerankers", f"other={missing}"],
            f"--more_rerankers other={missing}:",
        ),
        (["--reranker_dir", str(tmp_path), "--more_rerankers", str(tmp_path)], f"--more_rerankers {tmp_path}:"),
    ]:
        p = run([*base, *flags], check=False, timeout=120)
        assert p.returncode == 2, p.stderr[-2000:]
        assert f"error: {named}" in p.stderr, p.stderr[-2000:]
        assert not out.exists() and not work.exists()


def test_hybrid_recall_merges_milvus_bm25_with_the_dense_hits(milvus_uri):
    from core.errors import DataError
    from core.index import IndexError_, MilvusIndex
    from core.search import SearchPipeline, hybrid

    texts = [
        "感冒了吃什么药好得快",
        "头疼怎么办",
        "宝宝发烧怎么办",
        "高血压不能吃什么",
        "糖尿病的早期症状",
        "咳嗽老不好怎么办",
    ]
    rng = np.random.RandomState(3)
    vec = rng.randn(len(texts) + 1, 8).astype("float32")
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    by_text = dict(zip(texts, vec))
    query_vec = vec[-1]

    class Fixed:  # an encoder with known vectors: the query's nearest title is not the one sharing its words
        def embed(self, queries, input_type="query"):
            return np.stack([query_vec for _ in queries])

    lexical = MilvusIndex(milvus_uri, "hybrid")
    lexical.build(texts, lambda chunk: np.stack([by_text[t] for t in chunk]), 8, index_type="FLAT", lexical=True)
    assert lexical.has_lexical() and lexical.info()["rows"] == len(texts)
    bm25 = lexical.search_text(["糖尿病有什么症状"], 3)[0]
    assert bm25[0].text == "糖尿病的早期症状" and bm25[0].similarity > 0
    assert all(a.similarity >= b.similarity for a, b in zip(bm25, bm25[1:]))

    cos = {t: float(v @ query_vec) for t, v in by_text.items()}
    dense_order = sorted(texts, key=lambda t: -cos[t])
    assert dense_order[0] != "糖尿病的早期症状"
    dense_only = SearchPipeline(Fixed(), lexical, None, recall_num=6).search("糖尿病有什么症状", 6)
    assert [r["text"] for r in dense_only] == dense_order
    hits = SearchPipeline(Fixed(), lexical, None, recall_num=6, lexical_weight=1.0).search("糖尿病有什么症状", 6)
    assert hits[0]["text"] == "糖尿病的早期症状"  # BM25 / best BM25 = 1 outweighs any cosine gap of unit vectors
    best = max(h.similarity for h in bm25)
    by_bm25 = {h.text: h.similarity / best for h in lexical.search_text(["糖尿病有什么症状"], 100)[0]}
    for r in hits:  # every title is in the dense top 100 here: its score is cosine + w * normalised BM25
        assert abs(r["recall_similarity"] - (cos[r["text"]] + by_bm25.get(r["text"], 0.0))) < 1e-4
    assert [r["recall_similarity"] for r in hits] == sorted((r["recall_similarity"] for r in hits), reverse=True)

    # a title only the lexical side found starts from the lowest cosine of the dense list; ties keep the dense order
    Hit = type(bm25[0])
    dense = [Hit(1, "a", 0.9), Hit(2, "b", 0.5)]
    merged = hybrid(dense, [Hit(3, "c", 4.0), Hit(2, "b", 2.0)], 0.2, 3)
    assert [(h.text, round(h.similarity, 6)) for h in merged] == [("a", 0.9), ("c", 0.7), ("b", 0.6)]
    assert [h.text for h in hybrid(dense, [], 0.5, 3)] == ["a", "b"]
    for bad in (-0.1, 1.5, "0.2", True):
        with pytest.raises(DataError, match="lexical_weight must be a number from 0 to 1"):
            SearchPipeline(Fixed(), lexical, None, lexical_weight=bad)

    plain = MilvusIndex(milvus_uri, "plain", client=lexical.client)
    plain.build(texts, lambda chunk: np.stack([by_text[t] for t in chunk]), 8, index_type="FLAT")
    assert not plain.has_lexical()
    with pytest.raises(IndexError_, match="no BM25 field for lexical search: rebuild it with .*--lexical"):
        SearchPipeline(Fixed(), plain, None, lexical_weight=0.5).search("糖尿病有什么症状", 3)
    assert SearchPipeline(Fixed(), plain, None).search("糖尿病有什么症状", 1)[0]["text"] == dense_order[0]
    lexical.close()


def test_a_milvus_bound_holds_for_every_call_under_it(milvus_uri):
    from core.errors import DeadlineExceeded
    from core.index import MilvusIndex

    vec = np.eye(4, dtype="float32")
    index = MilvusIndex(milvus_uri, "bounded")
    index.build(["a", "b", "c", "d"], lambda chunk: vec[: len(chunk)], 4, index_type="FLAT")
    fresh = MilvusIndex(milvus_uri, "bounded", client=index.client)  # its dim is not cached: search asks info()
    assert [h.text for h in fresh.search(vec[:1], 1, timeout=30)[0]] == ["a"]
    # an inner call with no bound (or a looser one) of its own keeps the enclosing deadline
    for call in (lambda i: i.search(vec[:1], 1), lambda i: i.info(), lambda i: i.info(timeout=30)):
        cold = MilvusIndex(milvus_uri, "bounded", client=index.client)
        with cold.bounded(-1), pytest.raises(DeadlineExceeded, match="deadline passed before Milvus"):
            call(cold)
    index.close()

"""scripts/train_rocketqa.sh: both stages trained on what recall returns, end to end on a tiny model."""

import json
import os
import shutil
import subprocess

import numpy as np
from conftest import ROOT, head


def test_rocketqa_script_mines_trains_both_stages_and_resumes(data_dir, tiny_model, tmp_path):
    import paddle

    from core.data import read_corpus, read_pairwise_train, read_tsv
    from core.engine import EncoderEngine, RankerEngine
    from core.index import MilvusIndex

    data = tmp_path / "data"
    (data / "recall").mkdir(parents=True)
    (data / "rank").mkdir()
    train = head(data_dir / "recall/train.csv", data / "recall/train.csv", 65)
    head(data_dir / "rank/train.csv", data / "rank/train.csv", 97)
    head(data_dir / "rank/train_graded.csv", data / "rank/train_graded.csv", 97)
    head(data_dir / "rank/dev_pairwise.csv", data / "rank/dev_pairwise.csv", 33)
    titles = [line.rstrip("\n").split("\t")[1] for line in open(train, encoding="utf-8")]
    titles += read_corpus(str(data_dir / "recall/corpus.csv"))[:150]
    corpus = list(dict.fromkeys(titles))
    (data / "recall/corpus.csv").write_text("".join(t + "\n" for t in corpus), encoding="utf-8")
    work = tmp_path / "work"
    env = dict(
        os.environ,
        DATA_DIR=str(data),
        WORK=str(work),
        MODEL=tiny_model,
        CE_STEPS="4",
        RANK_STEPS="4",
        RANK_FREEZE="1",
        RECALL_STEPS="3",
        MAX_SEQ_LEN="32",
        RECALL_NUM="10",
        OMP_NUM_THREADS="1",
    )

    def run():
        r = subprocess.run(
            ["bash", "scripts/train_rocketqa.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        return r.stdout

    out = run()
    mined = read_pairwise_train(str(work / "hard_negatives.tsv"))
    assert mined and all(r["neg_title"] in corpus for r in mined)
    with open(work / "ranker/model_4/ranker.json") as f:  # fine-tuned on the grades and the mined negatives
        assert json.load(f)["objective"] == {"max_grade": 3, "hard_negatives_file": str(work / "hard_negatives.tsv")}
    assert "initialised weights from" in out  # the ranker starts from the binary cross-encoder
    binary = paddle.load(str(work / "ce_binary/model_4/model_state.pdparams"))
    ranker_params = paddle.load(str(work / "ranker/model_4/model_state.pdparams"))
    words = [k for k in binary if k.endswith("word_embeddings.weight")]
    assert words and "word-embedding weights kept as loaded" in out  # RANK_FREEZE=1: --freeze_embeddings
    for k in words:
        np.testing.assert_array_equal(binary[k].numpy(), ranker_params[k].numpy(), err_msg=k)
    # the distillation teacher: the fine-tuned ranker's scores of exactly the mined pairs
    cols = ("query", "title", "score")
    denoiser = read_tsv(str(work / "hard_negatives.tsv.scores.tsv"), cols, float_columns=("score",))
    teacher = read_tsv(str(work / "teacher_scores.tsv"), cols, float_columns=("score",))
    assert [(r["query"], r["title"]) for r in teacher] == [(r["query"], r["title"]) for r in denoiser]
    ranker = RankerEngine(str(work / "export/ranker"), max_seq_length=32, cpu_threads=1)
    sample = teacher[:16]
    want = ranker.score([(r["query"], r["title"]) for r in sample])
    np.testing.assert_allclose([r["score"] for r in sample], want, atol=1e-5)
    assert not np.allclose([r["score"] for r in teacher], [r["score"] for r in denoiser], atol=1e-4)
    # the distilled encoder is trained (not the zero-shot one); its index holds the corpus (below)
    texts = corpus[:8]
    zero = EncoderEngine(str(work / "export/recall_zero_shot"), max_seq_length=32, cpu_threads=1).embed(texts)
    tuned = EncoderEngine(str(work / "export/recall"), max_seq_length=32, cpu_threads=1).embed(texts)
    assert not np.allclose(zero, tuned, atol=1e-4)

    # a second run finds every output and trains nothing again
    again = run()
    for what in (
        "ce_binary/model_4",
        "ranker/model_4",
        "teacher_scores.tsv",
        "recall/model_3",
        "export/recall/inference.onnx",
    ):
        assert f"{work / what} is there: skipped" in again, what
    assert "resuming:" in again  # mining finds every query already written
    assert "index distilled is there: skipped" in again and "global step" not in again
    # a new export of the encoder re-indexes the corpus: the index never keeps an older model's vectors
    shutil.rmtree(work / "export/recall")
    third = run()
    assert "index distilled is there: skipped" not in third and "indexing" in third
    # a redone step redoes what depends on it: a newer ranker export -> teacher, encoder, export, index
    os.utime(work / "export/ranker/inference.onnx")
    fourth = run()
    assert f"{work / 'teacher_scores.tsv'} is older than" in fourth and "global step" in fourth
    assert f"{work / 'ranker/model_4'} is there: skipped" in fourth and "indexing" in fourth
    index = MilvusIndex(str(work / "milvus.db"), "distilled")  # opened last: Milvus Lite locks the file
    assert index.info()["rows"] == len(corpus)
    index.close()

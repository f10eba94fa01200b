"""Tiny randomly initialised ERNIE backbones (character vocabulary) for tests and smoke runs."""

import os
import string
from collections.abc import Sequence


def build_vocab(texts: Sequence[str]) -> list[str]:
    chars = set()
    for t in texts:
        chars.update(c for c in t.lower() if not c.isspace())
    extra = set(string.ascii_lowercase + string.digits)
    pieces = sorted(chars | extra) + ["##" + c for c in string.ascii_lowercase + string.digits]
    return ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [p for p in pieces if p not in ("[", "]")] + ["[", "]"]


def make_tiny_ernie(
    out_dir,
    texts,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    max_position=128,
    dropout=0.1,
    seed=0,
    pooling_mode=None,
    arch="ernie",
) -> str:
    """Write a PaddleNLP model directory with random weights and a character vocabulary.

    arch "ernie" (ErnieModel) or "ernie_gram" (ErnieGramModel: its config has its own `embedding_size`,
    default 768, and PaddleNLP's ErnieGramModel has no projection from it to `hidden_size`, so it is set
    to the hidden size)."""
    import paddle
    from paddlenlp import transformers as T

    names = {
        "ernie": ("ErnieConfig", "ErnieModel", "ErnieTokenizer"),
        "ernie_gram": ("ErnieGramConfig", "ErnieGramModel", "ErnieGramTokenizer"),
    }
    config_cls, model_cls, tokenizer_cls = (getattr(T, n) for n in names[arch])
    os.makedirs(out_dir, exist_ok=True)
    vocab = list(dict.fromkeys(build_vocab(texts)))
    vocab_file = os.path.join(out_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tokenizer_cls(vocab_file).save_pretrained(out_dir)
    extra = {"embedding_size": hidden_size} if arch == "ernie_gram" else {}
    config = config_cls(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position,
        type_vocab_size=2,
        pad_token_id=0,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        **extra,
    )
    if pooling_mode:
        config.pooling_mode = pooling_mode
    paddle.seed(seed)
    model_cls(config).save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """python -m core.tiny --out DIR --data FILE...: a small random backbone for smoke runs."""
    import argparse

    from .data import read_tsv

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--data", nargs="+", required=True, help="TSV files whose characters form the vocabulary")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    a = p.parse_args(argv)
    texts = []
    for f in a.data:
        texts += [" ".join(r.values()) for r in read_tsv(f, ("a", "b", "c"), optional=2)]
    make_tiny_ernie(
        a.out,
        texts,
        hidden_size=a.hidden,
        num_layers=a.layers,
        num_heads=max(1, a.hidden // 32),
        intermediate_size=4 * a.hidden,
    )
    print(f"wrote a {a.layers}-layer/{a.hidden} random backbone to {a.out}")


if __name__ == "__main__":
    main()

"""Tiny randomly initialised ERNIE backbones (character vocabulary) for tests and smoke runs."""
import os
import string


def build_vocab(texts):
    chars = set()
    for t in texts:
        chars.update(c for c in t.lower() if not c.isspace())
    extra = set(string.ascii_lowercase + string.digits)
    pieces = sorted(chars | extra) + ["##" + c for c in string.ascii_lowercase + string.digits]
    return ["[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]"] + [p for p in pieces if p not in ("[", "]")] + ["[", "]"]


def make_tiny_ernie(out_dir, texts, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                    max_position=128, dropout=0.1, seed=0, pooling_mode=None):
    """Write a PaddleNLP model directory with random weights and a character vocabulary."""
    import paddle
    from paddlenlp.transformers import ErnieConfig, ErnieModel, ErnieTokenizer

    os.makedirs(out_dir, exist_ok=True)
    vocab = build_vocab(texts)
    vocab = list(dict.fromkeys(vocab))
    vocab_file = os.path.join(out_dir, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    tokenizer = ErnieTokenizer(vocab_file)
    tokenizer.save_pretrained(out_dir)
    config = ErnieConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=num_layers,
                         num_attention_heads=num_heads, intermediate_size=intermediate_size,
                         max_position_embeddings=max_position, type_vocab_size=2, pad_token_id=0,
                         hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    if pooling_mode:
        config.pooling_mode = pooling_mode
    paddle.seed(seed)
    model = ErnieModel(config)
    model.save_pretrained(out_dir)
    return out_dir

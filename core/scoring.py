"""Batched scoring of (query, title) pairs with a dynamic-graph model (evaluation and prediction)."""

from collections.abc import Callable, Sequence

import numpy as np

from .data import PairEncoder, pad


def score_pairs(
    predict: Callable,
    tokenizer: object,
    pairs: Sequence[tuple[str, str]],
    max_seq_length: int = 128,
    batch_size: int = 32,
) -> np.ndarray:
    """Relevance probabilities of (query, title) pairs with `predict(input_ids, token_type_ids)`.

    Rows are sorted by length so each batch is padded only to its own longest row; the
    result comes back in input order.
    """
    import paddle

    enc = PairEncoder(tokenizer, max_seq_length)
    encoded = enc.many(pairs)
    order = np.argsort([len(e[0]) for e in encoded], kind="mergesort")
    out = np.zeros(len(pairs), dtype=np.float32)
    pad_id = tokenizer.pad_token_id or 0
    pad_type = getattr(tokenizer, "pad_token_type_id", 0) or 0
    with paddle.no_grad():
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            ids = paddle.to_tensor(pad([encoded[j][0] for j in idx], pad_id))
            tts = paddle.to_tensor(pad([encoded[j][1] for j in idx], pad_type))
            out[idx] = predict(ids, tts).numpy().reshape(-1)
    return out

"""Pooling of a backbone's outputs into one vector per row."""

import paddle


def encode(ptm, input_ids, token_type_ids=None, mode="cls", pad_token_id=0):
    """Run the backbone and pool: 'cls' = its pooler output, 'mean' = masked mean of tokens."""
    mask = paddle.cast(input_ids != pad_token_id, "float32")
    attention_mask = paddle.unsqueeze((1.0 - mask) * -1e4, axis=[1, 2])
    sequence_output, pooled = ptm(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)[:2]
    if mode == "cls":
        return pooled
    if mode == "mean":
        m = paddle.unsqueeze(mask, -1)
        return paddle.sum(sequence_output * m, axis=1) / paddle.clip(paddle.sum(m, axis=1), min=1.0)
    raise ValueError(f"unknown pooling mode {mode!r} (use cls or mean)")

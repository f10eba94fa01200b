"""Pooling of a backbone's outputs into one vector per row."""

import paddle


def encode(
    ptm: object,
    input_ids: paddle.Tensor,
    token_type_ids: paddle.Tensor | None = None,
    mode: str = "cls",
    pad_token_id: int = 0,
) -> paddle.Tensor:
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


def concat_padded(a: paddle.Tensor, b: paddle.Tensor, value: int) -> paddle.Tensor:
    """Rows of `a` then rows of `b` ([n, len] int tensors), the shorter padded with `value` to the longer's length
    (one backbone pass over both; the padding is masked out)."""
    width = max(a.shape[1], b.shape[1])

    def widen(x):
        extra = width - x.shape[1]
        return x if extra == 0 else paddle.concat([x, paddle.full([x.shape[0], extra], value, x.dtype)], axis=1)

    return paddle.concat([widen(a), widen(b)])

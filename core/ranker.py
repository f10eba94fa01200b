"""What both rankers share: building from a checkpoint, batched scoring, static export, CLI glue."""

import os
import sys

import numpy as np

from . import backbone, checkpoint
from .data import PairEncoder, pad
from .errors import PipelineError

INPUT_NAMES = ("input_ids", "token_type_ids")


def run_cli(main):
    """Run `main()`; errors meant for the user are printed as one line and exit with status 2."""
    try:
        main()
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def backbone_source(params_path: str | None, model_name_or_path: str | None) -> str:
    """A checkpoint carries its backbone config and tokenizer: prefer them to --model_name_or_path."""
    if params_path:
        d = checkpoint.ckpt_dir_of(checkpoint.params_path(params_path))
        if backbone.is_model_dir(d):
            return d
    return model_name_or_path


def set_threads(n: int) -> None:
    """Set Paddle's CPU math-library threads, also when Paddle is already loaded (the environment
    variables alone are read only at start), and the variables for child processes."""
    if n and n > 0:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[k] = str(n)
        import paddle

        paddle.base.core.set_num_threads(int(n))


def score_pairs(predict, tokenizer, pairs, max_seq_length=128, batch_size=32):
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


def export_static(model: object, output_path: str, prefix: str = "inference", output_name: str | None = None) -> str:
    """Save `model.predict(input_ids, token_type_ids)` as a static graph output_path/prefix.* (the one export
    path of every model kind), with the limits of its inputs; `output_name` names the graph's output."""
    import paddle

    class Scorer(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids):  # first parameter must be `self` for jit.save
            return self.inner.predict(input_ids, token_type_ids)

    scorer = Scorer(model)
    scorer.eval()
    spec = [paddle.static.InputSpec(shape=[None, None], dtype="int64", name=n) for n in INPUT_NAMES]
    static = paddle.jit.to_static(scorer, input_spec=spec, full_graph=True)
    os.makedirs(output_path, exist_ok=True)
    prefix_path = os.path.join(output_path, prefix)
    paddle.jit.save(static, prefix_path)
    from .inference import name_output, write_limits

    if output_name:
        name_output(output_path, output_name, prefix)
    write_limits(model, output_path)
    return prefix_path

"""The int8 ONNX files are int8: quantized MatMuls and embeddings, a fraction of the fp32 size, and
scores close to fp32 but not identical (identical scores mean nothing was quantized)."""

import collections
import os

import numpy as np
import onnx
import pytest
from conftest import PAIRS, run

QUANTIZED_MATMULS = {"MatMulInteger", "DynamicQuantizeMatMul", "QLinearMatMul", "MatMulIntegerToFloat"}


def check_int8_file(model_dir):
    fp32, int8 = os.path.join(model_dir, "inference.onnx"), os.path.join(model_dir, "inference.int8.onnx")
    ops = collections.Counter(n.op_type for n in onnx.load(int8).graph.node)
    fp32_ops = collections.Counter(n.op_type for n in onnx.load(fp32).graph.node)
    assert sum(ops[o] for o in QUANTIZED_MATMULS) >= 0.7 * fp32_ops["MatMul"], (ops, fp32_ops)
    assert ops["Constant"] <= 0.1 * sum(ops.values())  # the weights are initializers, so they were quantized
    ratio = os.path.getsize(int8) / os.path.getsize(fp32)
    assert ratio <= 0.4, ratio
    return ratio


def test_ranker_int8_is_quantized_and_close_to_fp32(served):
    from core.engine import RankerEngine

    check_int8_file(served["exported"])
    fp32 = RankerEngine(served["exported"], backend="onnxruntime", max_seq_length=32, cpu_threads=1)
    int8 = RankerEngine(served["exported"], backend="onnxruntime-int8", max_seq_length=32, cpu_threads=1)
    pairs = PAIRS * 4
    a, b = fp32.score(pairs), int8.score(pairs)
    diff = np.abs(a - b).max()
    assert 0 < diff < 0.05, diff
    np.testing.assert_allclose(a, served["engine"].score(pairs), atol=1e-5)  # fp32 ONNX = Paddle Inference


@pytest.mark.parametrize("flag", ["--int8"])
def test_recall_encoder_int8_is_quantized_and_close_to_fp32(tiny_model, tmp_path, flag):
    from core.engine import EncoderEngine

    out = tmp_path / "encoder"
    run(["recall/export_model.py", "--model_name_or_path", tiny_model, "--output_path", str(out), flag])
    check_int8_file(str(out))
    texts = [q for q, _ in PAIRS] + [t for _, t in PAIRS]
    paddle = EncoderEngine(str(out), max_seq_length=32, cpu_threads=1).embed(texts)
    fp32 = EncoderEngine(str(out), backend="onnxruntime", max_seq_length=32, cpu_threads=1).embed(texts)
    int8 = EncoderEngine(str(out), backend="onnxruntime-int8", max_seq_length=32, cpu_threads=1).embed(texts)
    np.testing.assert_allclose(fp32, paddle, atol=1e-5)
    cos = np.sum(fp32 * int8, axis=1)
    assert np.all(cos > 0.98) and np.abs(fp32 - int8).max() > 0, cos


def test_paddle_bf16_backend_runs_in_bf16_and_stays_close(served):
    """paddle-bf16 (oneDNN bfloat16) differs from fp32 a little: not at all would mean it ran in fp32."""
    from core.engine import RankerEngine
    from core.inference import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no native bfloat16")
    pairs = PAIRS * 4
    fp32 = served["engine"].score(pairs)
    bf16 = RankerEngine(served["exported"], backend="paddle-bf16", max_seq_length=32, cpu_threads=1).score(pairs)
    diff = np.abs(bf16 - fp32).max()
    assert 0 < diff < 0.05, diff


@pytest.mark.parametrize("backend", ["paddle", "onnxruntime", "onnxruntime-int8"])
def test_engine_replicas_give_the_scores_of_one_session(served, backend):
    """replicas: 2 runs a request's rows on two one-thread sessions side by side, with the same scores (int8
    within a little: dynamic quantization scales activations per batch, and the batches differ)."""
    from core.engine import RankerEngine

    pairs = [(q, t * (i % 5 + 1)) for i, (q, t) in enumerate(PAIRS * 6)]  # mixed lengths: several batches
    one = RankerEngine(served["exported"], backend=backend, max_seq_length=32, cpu_threads=1)
    two = RankerEngine(served["exported"], backend=backend, max_seq_length=32, cpu_threads=2, replicas=2)
    assert len(two.backends) == 2 and two.backends[0] is not two.backends[1]
    used = set()
    for b in two.backends:  # record which session ran each batch
        b.run = lambda f, b=b, run=b.run: (used.add(id(b)), run(f))[1]
    np.testing.assert_allclose(two.score(pairs), one.score(pairs), atol=2e-3 if backend.endswith("int8") else 1e-6)
    assert len(used) == 2

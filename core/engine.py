"""One predictor interface over Paddle Inference and ONNX Runtime for exported rankers.

    engine = RankerEngine("output/pairwise", backend="onnxruntime", cpu_threads=2)
    engine.score([("query", "title"), ...])        # -> np.ndarray of probabilities
    engine.run_feeds({"input_ids": ..., "token_type_ids": ...})   # raw tensors (General model protocol)

Paddle Inference options follow PaddleNLP's deploy/python/predict.py: --device cpu|gpu,
--cpu_threads, --enable_mkldnn, --use_tensorrt, --precision fp32|fp16|int8. The GPU and TensorRT
options are passed to Paddle Inference as documented there but cannot be exercised on a CPU-only
machine. ONNX Runtime runs `inference.onnx` (or the int8 `inference.int8.onnx`), written from the
static graph by `to_onnx` (paddle2onnx) at export time.
"""

import logging
import os
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.backbone import load_tokenizer
from core.checkpoint import RANKER
from core.data import RUN_OVERHEAD_TOKENS, PairEncoder, TextEncoder, pad, run_by_length
from core.errors import DataError, ModelLoadError
from core.inference import (  # noqa: F401  (BACKENDS, default_threads, to_onnx re-exported)
    BACKENDS,
    ONNX_FILE,
    ONNX_INT8_FILE,
    PaddlePredictor,
    default_threads,
    read_limits,
    to_onnx,
)
from core.interfaces import Encoded, Pair

INPUTS = ("input_ids", "token_type_ids")


class OrtBackend:
    def __init__(self, model_dir, cpu_threads=2, int8=False, **_):
        import onnxruntime as ort

        path = os.path.join(model_dir, ONNX_INT8_FILE if int8 else ONNX_FILE)
        if not os.path.isfile(path):
            raise ModelLoadError(
                f"{path} not found: export with --onnx{' --int8' if int8 else ''} "
                f"(or run deploy/python/to_onnx.py) first"
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = cpu_threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # no warnings about unused initializers left by paddle2onnx
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict) -> np.ndarray:
        return self.session.run(self.output_names[:1], {n: feeds[n] for n in self.input_names})[0]


class Engine:
    """Tokenizer + backend for one exported model; thread-safe.

    `replicas` > 1 loads that many sessions of the model, each with cpu_threads // replicas threads
    (at least 1), and runs the batches of one call side by side, one per session: on few cores,
    small batches keep one core each busier than two threads share one matrix product."""

    def __init__(
        self,
        model_dir,
        backend="paddle",
        max_seq_length=128,
        cpu_threads=2,
        device="cpu",
        enable_mkldnn=False,
        use_tensorrt=False,
        precision="fp32",
        batch_size=32,
        replicas=1,
    ):
        if not os.path.isdir(model_dir):
            raise ModelLoadError(f"{model_dir}: model directory not found")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
        self.model_dir = model_dir
        self.tokenizer = load_tokenizer(model_dir)
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.replicas = max(1, int(replicas))
        threads = max(1, int(cpu_threads) // self.replicas)
        if self.replicas > 1 and backend.startswith("paddle"):
            logging.getLogger("core.engine").warning(
                "replicas %d with backend %s: Paddle Inference predictors run slower side by side than one "
                "predictor with all the threads (benchmarks/results/serving.md: paddle-bf16, 2 sessions); "
                "replicas are for ONNX Runtime backends",
                self.replicas,
                backend,
            )

        def make():
            if backend in ("paddle", "paddle-bf16"):
                return PaddlePredictor(
                    model_dir,
                    device=device,
                    cpu_threads=threads,
                    enable_mkldnn=enable_mkldnn,
                    use_tensorrt=use_tensorrt,
                    precision="bf16" if backend == "paddle-bf16" else precision,
                )
            return OrtBackend(model_dir, threads, int8=backend.endswith("int8") or precision == "int8")

        self.backends = [make() for _ in range(self.replicas)]
        self.backend = self.backends[0]
        self._idle = queue.SimpleQueue()  # sessions free to run; a run takes one and gives it back
        for b in self.backends:
            self._idle.put(b)
        self._pool = ThreadPoolExecutor(self.replicas, "engine") if self.replicas > 1 else None
        self.backend_name = backend
        # ONNX Runtime gains from splitting a mixed-length batch into fewer padded tokens;
        # Paddle Inference loses (it re-plans for each new input shape)
        self.run_overhead_tokens = RUN_OVERHEAD_TOKENS if backend.startswith("onnxruntime") else None
        limits = read_limits(model_dir)
        self.vocab_size = int(limits.get("vocab_size", self.tokenizer.vocab_size))
        self.type_vocab_size = int(limits.get("type_vocab_size", 2))
        self.max_positions = int(limits.get("max_position_embeddings", 512))

    @property
    def input_names(self) -> list[str]:
        return list(INPUTS)

    def _run(self, feeds):
        backend = self._idle.get()
        try:
            out = np.asarray(backend.run(feeds))
        finally:
            self._idle.put(backend)
        return out.reshape(len(feeds["input_ids"]), -1)

    def check_feeds(self, feeds: dict) -> tuple[np.ndarray, np.ndarray]:
        """Already-tokenized tensors -> (input_ids, token_type_ids) int64 [batch, seq], or a DataError
        naming the feed: names, integer dtype, 2-d shape, ids within the vocabulary, token types within
        the model's type vocabulary, and a length within its positions."""
        for name in INPUTS:
            if name not in feeds:
                raise DataError(f"missing feed '{name}' (the model takes {', '.join(INPUTS)})")
        extra = set(feeds) - set(INPUTS)
        if extra:
            raise DataError(f"unknown feed name(s) {sorted(extra)} (the model takes {', '.join(INPUTS)})")
        arrays = {}
        for name in INPUTS:
            a = np.asarray(feeds[name])
            if a.dtype.kind not in "iu":
                raise DataError(f"feed '{name}' must hold integers, got {a.dtype}")
            if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
                raise DataError(f"feed '{name}' must have shape [batch, seq_len], got {list(a.shape)}")
            arrays[name] = a.astype(np.int64)
        ids, types = arrays["input_ids"], arrays["token_type_ids"]
        if ids.shape != types.shape:
            raise DataError(f"input_ids shape {list(ids.shape)} differs from token_type_ids shape {list(types.shape)}")
        if ids.shape[1] > self.max_positions:
            raise DataError(f"sequence length {ids.shape[1]} exceeds the model's {self.max_positions} positions")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise DataError(f"input_ids must lie in [0, {self.vocab_size})")
        if types.min() < 0 or types.max() >= self.type_vocab_size:
            raise DataError(f"token_type_ids must lie in [0, {self.type_vocab_size})")
        return ids, types

    def run_feeds(self, feeds: dict) -> np.ndarray:
        """Run already-tokenized int64 tensors [batch, seq] in one batch (checked by check_feeds)."""
        ids, types = self.check_feeds(feeds)
        return self._squeeze(self._run({"input_ids": ids, "token_type_ids": types}))

    @staticmethod
    def _squeeze(out):
        return out.reshape(-1) if out.shape[1] == 1 else out

    def run_encoded(self, encoded: Sequence[Encoded]) -> np.ndarray:
        """Outputs of encoded rows, batched by length, each batch padded to its longest row."""

        def run(batch):
            return self._run(
                {"input_ids": pad([e[0] for e in batch], self.pad_id), "token_type_ids": pad([e[1] for e in batch], 0)}
            )

        out = run_by_length(
            encoded,
            self.batch_size,
            run,
            length=lambda e: len(e[0]),
            overhead_tokens=self.run_overhead_tokens,
            pool=self._pool,
            workers=self.replicas,
        )
        return self._squeeze(out)


class RankerEngine(Engine):
    """An exported ranker: (query, title) pairs -> relevance probabilities."""

    def __init__(self, model_dir, **kw):
        super().__init__(model_dir, **kw)
        self.encoder = PairEncoder(self.tokenizer, self.max_seq_length)

    def encode(self, pairs: Sequence[Pair]) -> list[Encoded]:
        return self.encoder.many(pairs)

    def score_encoded(self, encoded: Sequence[Encoded]) -> np.ndarray:
        return self.run_encoded(encoded)

    def score(self, pairs: Sequence[Pair]) -> np.ndarray:
        return self.run_encoded(self.encode(pairs))

    def score_to_file(self, pairs: Sequence[Pair], path: str, chunk: int = 2048) -> list[float]:
        """Score `pairs` chunk by chunk (progress bar) into query\ttitle\tscore rows, the format of
        mine_negatives.py's scores file; the file appears complete or not at all. Returns the scores."""
        from tqdm import tqdm

        scores: list[float] = []
        bar = tqdm(total=len(pairs), unit="pair", desc="scoring")
        with open(path + ".part", "w", encoding="utf-8") as f, bar:
            for i in range(0, len(pairs), chunk):
                part = pairs[i : i + chunk]
                got = [float(s) for s in self.score(part)]
                f.writelines(f"{q}\t{t}\t{s:.6f}\n" for (q, t), s in zip(part, got))
                scores.extend(got)
                bar.update(len(part))
        os.replace(path + ".part", path)
        return scores


class EncoderEngine(Engine):
    """An exported recall encoder: texts -> L2-normalised embeddings [n, dim].

    Queries and passages get the prefixes recorded at export (e5: "query: " / "passage: ")."""

    def __init__(self, model_dir, **kw):
        super().__init__(model_dir, **kw)
        meta = {}
        p = os.path.join(model_dir, RANKER)
        if os.path.isfile(p):
            import json

            with open(p) as f:
                meta = json.load(f)
        if meta.get("kind", "encoder") != "encoder":
            raise ModelLoadError(
                f"{model_dir} holds a {meta['kind']} model, not a recall encoder "
                "(export one with recall/export_model.py)"
            )
        self.encoders = {
            kind: TextEncoder(self.tokenizer, self.max_seq_length, meta.get(f"{kind}_prefix", ""))
            for kind in ("query", "passage")
        }

    def encode(self, texts: Sequence[str], input_type: str = "query") -> list[Encoded]:
        if input_type not in self.encoders:
            raise DataError(f"input_type must be 'query' or 'passage', got {input_type!r}")
        return self.encoders[input_type].many(texts, what="input")

    def embed(self, texts: Sequence[str], input_type: str = "query") -> np.ndarray:
        out = self.run_encoded(self.encode(texts, input_type))
        return out.reshape(len(texts), -1)

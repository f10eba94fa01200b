"""The PyTorch side of the benchmarks; runs in .venv-bench (torch, transformers, sentence-transformers).

    .venv-bench/bin/python benchmarks/pytorch_reference.py crossencoder WEIGHTS.npz HF_DIR PAIRS.json OUT.json
    .venv-bench/bin/python benchmarks/pytorch_reference.py train CONFIG.json BATCHES.npz OUT.json
    .venv-infinity/bin/python benchmarks/pytorch_reference.py hf_reranker WEIGHTS.npz SPEC.json HF_DIR

`crossencoder`: builds a Hugging Face BertForSequenceClassification from our cross-encoder's weights
(exported by benchmarks/serving.py as numpy), loads it with sentence-transformers' CrossEncoder and
times `predict` at the given batch size. `train`: times fwd+bwd+AdamW steps of a BertModel with the
same shapes as the Paddle training-speed run. `hf_reranker`: the same weights as a one-logit Hugging Face
reranker directory (logit = l1 - l0, so its sigmoid is our probability), as re-ranking servers such as
Infinity load it, with model.onnx and model_quantized.onnx (dynamic int8 as optimum's
avx512_vnni config makes it), the files Infinity's optimum engine looks for.
"""

import json
import statistics
import sys
import time

import numpy as np


def paddle_to_hf(state, prefix="model.bert."):
    """Our PaddleNLP BertForSequenceClassification state (numpy) -> HF state dict names/layouts."""
    out = {}
    names = {
        "self_attn.q_proj": "attention.self.query",
        "self_attn.k_proj": "attention.self.key",
        "self_attn.v_proj": "attention.self.value",
        "self_attn.out_proj": "attention.output.dense",
        "norm1": "attention.output.LayerNorm",
        "linear1": "intermediate.dense",
        "linear2": "output.dense",
        "norm2": "output.LayerNorm",
    }
    for k, v in state.items():
        if k.startswith(prefix + "embeddings."):
            hk = "bert." + k[len(prefix) :].replace("layer_norm", "LayerNorm")
        elif k.startswith(prefix + "encoder.layers."):
            rest = k[len(prefix + "encoder.layers.") :]
            layer, sub = rest.split(".", 1)
            mod, param = sub.rsplit(".", 1)
            hk = f"bert.encoder.layer.{layer}.{names[mod]}.{param}"
        elif k.startswith(prefix + "pooler."):
            hk = "bert." + k[len(prefix) :]
        elif k.startswith("model.classifier."):
            hk = k[len("model.") :]
        else:
            raise KeyError(k)
        if v.ndim == 2 and not hk.endswith("embeddings.weight"):
            v = v.T  # paddle Linear [in, out] -> torch [out, in]
        out[hk] = np.ascontiguousarray(v)
    return out


def bert_config(cfg, num_labels):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=cfg["max_position_embeddings"],
        type_vocab_size=cfg["type_vocab_size"],
        layer_norm_eps=cfg["layer_norm_eps"],
        pad_token_id=cfg["pad_token_id"],
        num_labels=num_labels,
        hidden_act="gelu",
    )


def hf_model(state, cfg, num_labels=2):
    """BertForSequenceClassification with our weights; num_labels=1 keeps the margin l1 - l0 as its logit."""
    import torch
    from transformers import BertForSequenceClassification

    hf = paddle_to_hf(state)
    if num_labels == 1:
        hf["classifier.weight"] = hf["classifier.weight"][1:2] - hf["classifier.weight"][0:1]
        hf["classifier.bias"] = hf["classifier.bias"][1:2] - hf["classifier.bias"][0:1]
    model = BertForSequenceClassification(bert_config(cfg, num_labels))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in hf.items()}, strict=False)
    missing = [m for m in missing if "position_ids" not in m]
    if missing or unexpected:
        raise SystemExit(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()


def hf_tokenizer(spec):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=spec["tokenizer_json"],
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=spec["max_seq_length"],
    )


def crossencoder(weights, hf_dir, pairs_file, out_file):
    import torch
    from sentence_transformers import CrossEncoder

    spec = json.load(open(pairs_file, encoding="utf-8"))
    torch.set_num_threads(spec["threads"])
    cfg = spec["config"]
    model = hf_model(dict(np.load(weights)), cfg)
    model.save_pretrained(hf_dir)
    hf_tokenizer(spec).save_pretrained(hf_dir)
    ce = CrossEncoder(hf_dir, num_labels=2, max_length=spec["max_seq_length"], device="cpu")
    pairs = [tuple(p) for p in spec["pairs"]]
    ce.predict(pairs[: spec["batch_size"]], batch_size=spec["batch_size"])  # warm-up
    speeds = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        logits = ce.predict(pairs, batch_size=spec["batch_size"], convert_to_numpy=True)
        speeds.append(len(pairs) / (time.perf_counter() - t0))
    # same weights: on our own token ids, the torch model must give our probabilities
    ids = torch.tensor(spec["check_ids"])
    with torch.no_grad():
        logits = model.eval()(
            input_ids=ids, attention_mask=(ids != cfg["pad_token_id"]).long(), token_type_ids=torch.zeros_like(ids)
        ).logits.numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs = (probs / probs.sum(1, keepdims=True))[:, 1]
    json.dump(
        {
            "pairs_per_s": statistics.median(speeds),
            "runs": speeds,
            "check_probs": probs.tolist(),
            "torch": torch.__version__,
        },
        open(out_file, "w"),
    )


def train(config_file, batches_file, out_file):
    import torch
    from transformers import BertConfig, BertModel

    spec = json.load(open(config_file))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    cfg = spec["config"]
    config = BertConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=cfg["pad_token_id"],
        hidden_act="gelu",
    )
    bert = BertModel(config, add_pooling_layer=False)
    head = torch.nn.Linear(cfg["hidden_size"], 1)
    params = list(bert.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5)
    data = np.load(batches_file)
    batches = [
        (torch.from_numpy(data[f"ids{i}"]), torch.from_numpy(data[f"mask{i}"])) for i in range(spec["n_batches"])
    ]
    bert.train()

    def step(ids, mask):
        out = bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pooled = (out * m).sum(1) / m.sum(1)
        score = torch.sigmoid(head(pooled)).squeeze(-1)
        half = ids.shape[0] // 2
        loss = torch.nn.functional.margin_ranking_loss(score[:half], score[half:], torch.ones(half), margin=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(*batches[0])  # warm-up
    speeds = []
    for _ in range(spec["repeats"]):
        t0 = time.perf_counter()
        n = 0
        for ids, mask in batches:
            step(ids, mask)
            n += ids.shape[0]
        speeds.append(n / (time.perf_counter() - t0))
    json.dump(
        {"pairs_per_s": statistics.median(speeds), "runs": speeds, "torch": torch.__version__}, open(out_file, "w")
    )


def hf_reranker(weights, spec_file, hf_dir):
    import os

    spec = json.load(open(spec_file, encoding="utf-8"))
    model = hf_model(dict(np.load(weights)), spec["config"], num_labels=1)
    model.config.max_position_embeddings = spec["config"]["max_position_embeddings"]
    model.save_pretrained(hf_dir)
    hf_tokenizer(spec).save_pretrained(hf_dir)
    # the ONNX files a hub repository ships for Infinity's optimum engine: torch's exporter (optimum 1.27's
    # exporter does not run on torch 2.13), then ONNX Runtime's dynamic int8 with the settings of optimum's
    # AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=True)
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx_dir = hf_dir  # Infinity 0.0.78 + optimum 2.1 match the file by bare name: keep them at the top
    ids = torch.tensor([[0, 10, 11, 2, 2, 12, 2]])
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids)),
        os.path.join(onnx_dir, "model.onnx"),
        input_names=["input_ids", "attention_mask"],
        output_names=["logits"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "seq"},
            "attention_mask": {0: "batch", 1: "seq"},
            "logits": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(
        os.path.join(onnx_dir, "model.onnx"),
        os.path.join(onnx_dir, "model_quantized.onnx"),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul", "Attention", "Gather"],
    )
    print("wrote", hf_dir, sorted(os.listdir(hf_dir)))


if __name__ == "__main__":
    {"crossencoder": crossencoder, "train": train, "hf_reranker": hf_reranker}[sys.argv[1]](*sys.argv[2:])

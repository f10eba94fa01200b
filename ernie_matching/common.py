"""Building the pairwise model for training or from a checkpoint (thin over core)."""

from core import checkpoint
from core.building import build_model
from core.errors import ModelLoadError

from .model import PairwiseMatching

KIND = "pairwise"


def build(model_name_or_path, params_path=None, margin=None, dropout=None, pooling="auto"):
    """Returns (model, tokenizer, backbone_config, meta). With params_path the weights come from there,
    and the margin and pooling it was trained with (unless given)."""
    kept = {}

    def make(ptm, tokenizer, pooling, saved):
        kept["margin"] = float(saved.get("margin", 0.1)) if margin is None else margin
        return PairwiseMatching(
            ptm, dropout=dropout, margin=kept["margin"], pooling=pooling, pad_token_id=tokenizer.pad_token_id or 0
        )

    model, tokenizer, ptm, _ = build_model(model_name_or_path, params_path, make, pooling=pooling)
    return model, tokenizer, ptm.config, {"kind": KIND, "pooling": model.pooling, "margin": kept["margin"]}


def init_from_cross_encoder(model, path: str) -> str:
    """Load a cross-encoder checkpoint (cross_encoder/, 2-class head) into the pairwise model: the backbone
    as it is, the head as one logit, (relevant - not relevant) row of weights and bias. Softmax over two
    logits is the sigmoid of their difference, so the pairwise model starts with the cross-encoder's
    scores exactly (same pooling). Returns the parameter file read."""
    state, p = checkpoint.read_params(path)
    w, b = state.get("model.classifier.weight"), state.get("model.classifier.bias")
    if w is None or b is None or list(w.shape)[-1:] != [2] or list(b.shape) != [2]:
        raise ModelLoadError(f"{p}: no 2-class cross-encoder head (model.classifier.weight / .bias of 2 classes)")
    out = {}
    for k, v in state.items():
        parts = k.split(".", 2)  # model . <backbone prefix> . rest
        if parts[:2] == ["model", "classifier"]:
            continue
        if parts[0] != "model" or len(parts) < 3:
            raise ModelLoadError(f"{p}: parameter {k} is not a cross-encoder's (model.<backbone>.*)")
        out["ptm." + parts[2]] = v
    out["similarity.weight"] = w[:, 1:2] - w[:, 0:1]
    out["similarity.bias"] = b[1:2] - b[0:1]
    checkpoint.set_params(model, out, p)
    return p

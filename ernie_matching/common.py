"""Building the pairwise model for training or from a checkpoint (thin over core)."""

from core.building import build_model

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

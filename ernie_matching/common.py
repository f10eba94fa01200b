"""Building the pairwise model for training or from a checkpoint (thin over core)."""

from core import backbone, checkpoint
from core.ranker import backbone_source

from .model import PairwiseMatching

KIND = "pairwise"


def build(model_name_or_path, params_path=None, margin=None, dropout=None, pooling="auto"):
    """Returns (model, tokenizer, backbone_config, meta). With params_path the weights come from there,
    and the margin and pooling it was trained with (unless given)."""
    src = backbone_source(params_path, model_name_or_path)
    tokenizer = backbone.load_tokenizer(src)
    meta = checkpoint.read_meta(params_path) if params_path else {}
    if margin is None:
        margin = float(meta.get("margin", 0.1))
    if params_path:
        ptm = backbone.init_backbone(src)
    else:
        ptm = backbone.load_backbone(src)
    pooling = meta.get("pooling") or backbone.pooling_mode(ptm, pooling)
    model = PairwiseMatching(
        ptm, dropout=dropout, margin=margin, pooling=pooling, pad_token_id=tokenizer.pad_token_id or 0
    )
    if params_path:
        checkpoint.load_params(model, params_path)
    meta = {"kind": KIND, "pooling": pooling, "margin": margin}
    return model, tokenizer, ptm.config, meta

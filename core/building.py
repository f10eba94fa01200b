"""The one model-building path shared by the pairwise model, the cross-encoder and the recall encoder."""

from collections.abc import Callable

from . import backbone, checkpoint


def backbone_source(params_path: str | None, model_name_or_path: str | None) -> str:
    """A checkpoint carries its backbone config and tokenizer: prefer them to --model_name_or_path."""
    if params_path:
        d = checkpoint.ckpt_dir_of(checkpoint.params_path(params_path))
        if backbone.is_model_dir(d):
            return d
    return model_name_or_path


def build_model(
    model_name_or_path: str | None,
    params_path: str | None,
    make: Callable,
    backbone_cls: type | None = None,
    backbone_kwargs: dict | None = None,
    pooling: str = "auto",
) -> tuple:
    """backbone source -> tokenizer -> the checkpoint's meta -> backbone -> pooling -> wrapper -> weights.

    The backbone is the pretrained one (`model_name_or_path`), or, with `params_path`, its architecture
    only (weights, tokenizer and meta then come from the checkpoint). `make(backbone, tokenizer, pooling,
    saved_meta)` wraps it into the model. Returns (model, tokenizer, backbone, saved_meta)."""
    src = backbone_source(params_path, model_name_or_path)
    tokenizer = backbone.load_tokenizer(src)
    saved = checkpoint.read_meta(params_path) if params_path else {}
    kw = backbone_kwargs or {}
    net = (
        backbone.init_backbone(src, cls=backbone_cls, **kw)
        if params_path
        else backbone.load_backbone(src, cls=backbone_cls, **kw)
    )
    pooling = saved.get("pooling") or backbone.pooling_mode(net, pooling)
    model = make(net, tokenizer, pooling, saved)
    if params_path:
        checkpoint.load_params(model, params_path)
    return model, tokenizer, net, saved

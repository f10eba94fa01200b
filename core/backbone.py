"""Resolving `--model_name_or_path` to a backbone (PaddleNLP Auto classes) and its tokenizer.

A local directory (model_config.json or config.json, model_state.pdparams, tokenizer files)
always works. PaddleNLP hub names (ernie-3.0-medium-zh, ernie-gram-zh, ...) download from
PaddleNLP's servers; when that fails, the error says how to pass a local directory instead.
"""

import gc
import logging
import os

from .errors import ModelLoadError

CONFIG_FILES = ("model_config.json", "config.json")
WEIGHT_FILES = ("model_state.pdparams", "model.safetensors")

_HINT = (
    "pass a local model directory (holding model_config.json, model_state.pdparams and the "
    "tokenizer files, e.g. a checkpoint saved by our trainers) to --model_name_or_path"
)


def _quiet_paddlenlp():
    logging.getLogger("paddlenlp").setLevel(logging.WARNING)
    try:
        from paddlenlp.utils.log import logger

        logger.set_level("WARNING")
    except Exception:  # pragma: no cover - logging is cosmetic
        pass


def is_model_dir(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f)) for f in CONFIG_FILES)


def resolve(name_or_path: str, tokenizer_only: bool = False) -> str:
    """Return a local directory or a hub name, or raise ModelLoadError with a clear message."""
    if not name_or_path:
        raise ModelLoadError(f"no model given: {_HINT}")
    if os.path.isdir(name_or_path):
        if tokenizer_only and os.path.isfile(os.path.join(name_or_path, "tokenizer_config.json")):
            return name_or_path
        if not is_model_dir(name_or_path):
            raise ModelLoadError(
                f"{name_or_path}: not a model directory (no model_config.json or config.json); {_HINT}"
            )
        return name_or_path
    if os.sep in name_or_path or name_or_path.startswith("."):
        raise ModelLoadError(f"{name_or_path}: model directory not found; {_HINT}")
    from . import e5

    if name_or_path in e5.NAMES:
        return e5.ensure_converted()
    return name_or_path


def _from_hub(loader, name, what):
    try:
        return loader(name)
    except Exception as e:  # PaddleNLP raises OSError/ValueError/HTTP errors when offline or unknown
        if os.path.isdir(name):
            raise ModelLoadError(f"cannot load {what} from {name}: {type(e).__name__}: {str(e)[:300]}") from None
        raise ModelLoadError(
            f"cannot load {what} '{name}': it is not a local directory and PaddleNLP's model hub "
            f"could not provide it ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            f"Offline, {_HINT}"
        ) from None


def load_tokenizer(name_or_path: str) -> object:
    from paddlenlp.transformers import AutoTokenizer

    from . import e5_tokenizer  # noqa: F401  (registers E5Tokenizer with PaddleNLP's AutoTokenizer)

    _quiet_paddlenlp()
    src = resolve(name_or_path, tokenizer_only=True)
    return _from_hub(AutoTokenizer.from_pretrained, src, "tokenizer")


def load_backbone(name_or_path: str, cls: type | None = None, **kwargs: object) -> object:
    """Load a pretrained model with a PaddleNLP Auto class (AutoModel by default)."""
    from paddlenlp.transformers import AutoModel

    _quiet_paddlenlp()
    cls = cls or AutoModel
    src = resolve(name_or_path)
    return _from_hub(lambda n: _without_collector(cls.from_pretrained, n, **kwargs), src, "model")


def _without_collector(load, *args, **kwargs):
    """PaddleNLP turns every warning raised while it sets a model's weights into a load error, a ResourceWarning
    of the garbage collector finalising a file someone else left open included. Collect first, and keep the
    collector off while loading, so that such a warning cannot fall inside it."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return load(*args, **kwargs)
    finally:
        if enabled:
            gc.enable()


def init_backbone(name_or_path: str, cls: type | None = None, **kwargs: object) -> object:
    """Build the architecture from a config only (weights come from a checkpoint afterwards)."""
    from paddlenlp.transformers import AutoConfig, AutoModel

    _quiet_paddlenlp()
    cls = cls or AutoModel
    src = resolve(name_or_path)
    config = _from_hub(AutoConfig.from_pretrained, src, "model config")
    for k, v in kwargs.items():
        setattr(config, k, v)
    archs = list(getattr(config, "architectures", None) or [])
    net = cls.from_config(config)
    if archs and not getattr(net.config, "architectures", None):  # from_config clears it; saved configs need it
        net.config.architectures = archs
    return net


def hidden_size(model: object) -> int:
    config = model.config
    return config["hidden_size"] if isinstance(config, dict) else config.hidden_size


def pooling_mode(model: object, requested: str = "auto") -> str:
    """'cls' (the backbone's pooler) or 'mean'; 'auto' reads `pooling_mode` from the config."""
    if requested != "auto":
        return requested
    return getattr(model.config, "pooling_mode", None) or "cls"


def keep_lower_layers(model: object, n: int) -> object:
    """Cut a PaddleNLP encoder (a *Model or a *ForSequenceClassification) to its lower `n` layers, in place.

    The config's num_hidden_layers becomes n, so a checkpoint saved afterwards rebuilds the smaller model.
    The student of a distillation starts like this from its teacher (TinyBERT/MiniLM-style layer drop)."""
    import paddle.nn as nn

    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    enc = base.encoder
    layers = enc if isinstance(enc, nn.LayerList) else enc.layers
    if not 1 <= n <= len(layers):
        raise ValueError(f"--num_layers {n}: the backbone has {len(layers)} layers; choose 1..{len(layers)}")
    kept = nn.LayerList(list(layers)[:n])
    if isinstance(enc, nn.LayerList):
        base.encoder = kept
    else:
        enc.layers = kept
        enc.num_layers = n
    for cfg in {id(c): c for c in (base.config, model.config)}.values():
        cfg.num_hidden_layers = n
    return model

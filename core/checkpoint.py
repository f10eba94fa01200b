"""Checkpoints: self-contained directories written atomically.

A checkpoint `save_dir/model_N/` holds model_state.pdparams (the whole ranker), the optimizer
and scheduler state (model_state.pdopt), training_state.json (step, epoch, batch), the
backbone config and tokenizer files, and ranker.json (what kind of model it is); with --ema_decay
also ema_state.pdparams (the weight average, to resume it), and a sibling `model_N_ema/` holds the
averaged weights as a weights-only checkpoint.
"""

import json
import os
import shutil

from .errors import ModelLoadError

PARAMS = "model_state.pdparams"
OPT = "model_state.pdopt"
STATE = "training_state.json"
RANKER = "ranker.json"
EMA = "ema_state.pdparams"


def save(
    ckpt_dir: str,
    model: object,
    tokenizer: object = None,
    backbone_config: object = None,
    optimizer: object = None,
    state: dict | None = None,
    meta: dict | None = None,
    extra: dict | None = None,
) -> str:
    """Write the checkpoint `ckpt_dir` (replacing an older one only once the new one is whole);
    `extra` maps more file names to objects for paddle.save (e.g. EMA: the weight average)."""
    import paddle

    parent = os.path.dirname(os.path.abspath(ckpt_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, "." + os.path.basename(ckpt_dir) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    paddle.save(model.state_dict(), os.path.join(tmp, PARAMS))
    if optimizer is not None:
        paddle.save(optimizer.state_dict(), os.path.join(tmp, OPT))
    for name, obj in (extra or {}).items():
        paddle.save(obj, os.path.join(tmp, name))
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    if backbone_config is not None:
        backbone_config.save_pretrained(tmp)
    if state is not None:
        with open(os.path.join(tmp, STATE), "w") as f:
            json.dump(state, f, indent=1)
    if meta is not None:
        with open(os.path.join(tmp, RANKER), "w") as f:
            json.dump(meta, f, indent=1)
    old = ckpt_dir + ".old"
    if os.path.exists(ckpt_dir):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(ckpt_dir, old)
    os.replace(tmp, ckpt_dir)
    shutil.rmtree(old, ignore_errors=True)
    return ckpt_dir


def params_path(path: str) -> str:
    """Accept a checkpoint directory or its model_state.pdparams file."""
    if path is None:
        return None
    p = os.path.join(path, PARAMS) if os.path.isdir(path) else path
    if not os.path.isfile(p):
        raise ModelLoadError(f"{path}: no checkpoint there (expected a directory with {PARAMS} or the file itself)")
    return p


def ckpt_dir_of(path: str) -> str:
    return path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))


def read_params(path: str) -> tuple[dict, str]:
    """(state dict, file) of a checkpoint dir or .pdparams file."""
    import paddle

    p = params_path(path)
    try:
        return paddle.load(p), p
    except Exception as e:
        raise ModelLoadError(f"{p}: cannot read parameters ({e})") from None


def set_params(model: object, state: dict, source: str) -> None:
    """Set `model`'s weights from `state`; every key of the model must be present with the right shape
    (`source` names where the state came from in the error)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ModelLoadError(
            f"{source}: does not fit this model: {len(missing)} parameters missing, e.g. {missing[:3]}"
        )
    bad = [k for k in own if list(state[k].shape) != list(own[k].shape)]
    if bad:
        k = bad[0]
        raise ModelLoadError(
            f"{source}: parameter {k} has shape {list(state[k].shape)}, the model expects {list(own[k].shape)}"
        )
    model.set_state_dict(state)


def load_params(model: object, path: str) -> str:
    """Load weights into `model`; every key of the model must be present with the right shape."""
    state, p = read_params(path)
    set_params(model, state, p)
    return p


def load_state(path: str) -> tuple[dict | None, str | None]:
    """(training_state dict, optimizer file) of a checkpoint, or (None, None) for a bare .pdparams."""
    d = ckpt_dir_of(path)
    sp, op = os.path.join(d, STATE), os.path.join(d, OPT)
    if os.path.isfile(sp) and os.path.isfile(op):
        with open(sp) as f:
            return json.load(f), op
    return None, None


def read_meta(path: str) -> dict:
    p = os.path.join(ckpt_dir_of(path), RANKER)
    if os.path.isfile(p):
        with open(p) as f:
            return json.load(f)
    return {}


def interpolate(sources: list[str], weights: list[float], out_dir: str) -> str:
    """Write the checkpoint `out_dir` whose weights are sum_i weights[i] * weights of sources[i]
    (checkpoints of one model kind; the weights sum to 1): an average of checkpoints of one run, or
    WiSE-FT's interpolation of a fine-tuned model with the one it started from. Its tokenizer,
    backbone config and ranker.json are copied from sources[0]; it is weights-only (no optimizer)."""
    import paddle

    if len(sources) < 2 or len(sources) != len(weights):
        raise ModelLoadError(f"interpolate: give two or more checkpoints and one weight each, got {sources} {weights}")
    if os.path.abspath(out_dir) in {os.path.abspath(ckpt_dir_of(s)) for s in sources if os.path.exists(s)}:
        raise ModelLoadError(f"interpolate: {out_dir} is one of the checkpoints averaged; write it elsewhere")
    if any(w < 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
        raise ModelLoadError(f"interpolate: the weights must be 0 or more and sum to 1, got {weights}")
    states = []
    for src in sources:
        p = params_path(src)
        try:
            states.append(paddle.load(p))
        except Exception as e:
            raise ModelLoadError(f"{p}: cannot read parameters ({e})") from None
    for src, state in zip(sources[1:], states[1:]):
        if state.keys() != states[0].keys():
            diff = sorted(set(state) ^ set(states[0]))
            raise ModelLoadError(
                f"{src}: not the same model as {sources[0]}: {len(diff)} weights differ, e.g. {diff[:3]}"
            )
        bad = [k for k in state if list(state[k].shape) != list(states[0][k].shape)]
        if bad:
            raise ModelLoadError(
                f"{src}: weight {bad[0]} has shape {list(state[bad[0]].shape)}, not {list(states[0][bad[0]].shape)}"
            )
    mixed = {}
    for k, v in states[0].items():
        if not paddle.is_floating_point(v):
            mixed[k] = v
            continue
        mixed[k] = sum(state[k].astype("float32") * w for state, w in zip(states, weights)).astype(v.dtype)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, "." + os.path.basename(out_dir) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    src_dir = ckpt_dir_of(sources[0])
    shutil.copytree(src_dir, tmp, ignore=shutil.ignore_patterns(PARAMS, OPT, STATE, EMA))
    paddle.save(mixed, os.path.join(tmp, PARAMS))
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir

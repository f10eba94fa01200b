"""Errors that name the problem for the user (shown without a traceback by the CLIs)."""


class PipelineError(Exception):
    """Base class of errors whose message is meant for the user."""


class DataError(PipelineError, ValueError):
    """A data file or a request holds something malformed."""


class ModelLoadError(PipelineError, OSError):
    """A model or tokenizer cannot be found or loaded."""

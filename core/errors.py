"""The one error taxonomy: errors whose message is meant for the user.

The command-line tools print them without a traceback. The server maps each class to its HTTP
status and its Paddle Serving Pipeline `err_no` (`ChannelDataErrcode`) in one place per transport
(deploy/transports/): the class decides the status, the message says what is wrong.

| class              | HTTP | err_no | meaning                                                  |
|--------------------|------|--------|----------------------------------------------------------|
| DataError          | 400  | 9      | bad input: a field of the wrong type, range or shape     |
| TooLarge           | 413  | 9      | over a configured limit (body, rows, text length, tokens) |
| ReadTimeout        | 408  | 9      | the body did not arrive within read_timeout_s            |
| Unauthorized       | 401  | 5      | API key missing or wrong                                 |
| NotFound           | 404  | 7      | no such service / model                                  |
| Overloaded         | 503  | 6      | the batch queue is full: retry later (Retry-After)       |
| DeadlineExceeded   | 504  | 1      | the request did not finish within its deadline           |
| Unavailable        | 503  | 6      | the index is missing or Milvus is unreachable            |
| InternalError      | 500  | 8      | a bug: logged with the request id, counted in /metrics   |
"""


class PipelineError(Exception):
    """Base class of errors whose message is meant for the user."""

    status = 400
    err_no = 9
    kind = "bad_input"


class DataError(PipelineError, ValueError):
    """A data file or a request holds something malformed."""


class TooLarge(DataError):
    """A request is over one of the configured limits."""

    status = 413
    kind = "too_large"


class Unauthorized(PipelineError):
    status = 401
    err_no = 5
    kind = "unauthorized"


class NotFound(PipelineError, LookupError):
    status = 404
    err_no = 7
    kind = "not_found"


class Overloaded(PipelineError):
    status = 503
    err_no = 6
    kind = "overloaded"
    retry_after = 1


class DeadlineExceeded(PipelineError):
    status = 504
    err_no = 1
    kind = "timeout"


class Unavailable(PipelineError):
    """A dependency (the index, Milvus) is missing or unreachable."""

    status = 503
    err_no = 6
    kind = "unavailable"


class InternalError(PipelineError):
    status = 500
    err_no = 8
    kind = "internal"


class ModelLoadError(PipelineError, OSError):
    """A model or tokenizer cannot be found or loaded."""

    status = 500
    err_no = 8
    kind = "internal"


class ReadTimeout(DataError):
    """The client did not send its request body in time (read_timeout_s)."""

    status = 408
    kind = "read_timeout"

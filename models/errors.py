"""Errors raised by the computing layer; the server maps each to one HTTP status."""


class ModelError(Exception):
    """Base class: a request the models layer cannot serve."""

    code = "model_error"
    param: str | None = None
    retry_after: int | None = None  # seconds, when retrying later can succeed


class ModelNotFound(ModelError):
    """No model (or predictor) of that name is loaded."""

    code = "model_not_found"
    param = "model"


class ContextLengthExceeded(ModelError):
    """Prompt plus requested tokens do not fit the model's context."""

    code = "context_length_exceeded"
    param = "messages"


class QueueFull(ModelError):
    """The waiting queue is full; retry later."""

    code = "queue_full"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after: int | None = retry_after


class InvalidRequest(ModelError):
    """A request the engine cannot run (bad grammar, bad template input, ...)."""

    code = "invalid_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EngineFailure(ModelError):
    """llama.cpp failed while decoding; not the caller's fault."""

    code = "engine_failure"


class EngineUnavailable(ModelError):
    """The engine's worker has stopped making progress; retry on another replica or later."""

    code = "engine_stalled"

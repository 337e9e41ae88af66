"""The one error envelope: {"error": {"message", "type", "param", "code"}} with a real status."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models import errors as model_errors
from models.embedder import EmbedderUnavailable
from models.predictors.feedback import BadLabel, ConflictingLabels, UnknownIds
from models.predictors.prediction_log import PredictionLogFull
from models.predictors.schema import InvalidInput
from server.protocol.common import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)
_REFUSED = re.compile(r"^([\w.]+) is not supported by this server")

# Every error the models layer raises, and how it is answered: the one table.
_MODEL_ERROR_STATUS: dict[type[model_errors.ModelError], tuple[int, str]] = {
    model_errors.ModelNotFound: (404, "invalid_request_error"),
    model_errors.ContextLengthExceeded: (400, "invalid_request_error"),
    model_errors.InvalidRequest: (400, "invalid_request_error"),
    model_errors.QueueFull: (429, "rate_limit_error"),
    model_errors.EngineFailure: (500, "server_error"),
    model_errors.EngineUnavailable: (503, "server_error"),
    InvalidInput: (400, "invalid_request_error"),
    BadLabel: (400, "invalid_request_error"),
    UnknownIds: (404, "invalid_request_error"),
    ConflictingLabels: (409, "invalid_request_error"),
    PredictionLogFull: (503, "server_error"),
    EmbedderUnavailable: (501, "server_error"),
}


class APIError(Exception):
    """An error the server answers with the envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers


def envelope(message: str, type: str, param: str | None, code: str | None) -> dict[str, Any]:
    """The body of every error response."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def from_model_error(exc: model_errors.ModelError) -> APIError:
    """Translate a models-layer error into an APIError."""
    status, kind = next(
        (_MODEL_ERROR_STATUS[k] for k in type(exc).__mro__ if k in _MODEL_ERROR_STATUS),
        (500, "server_error"),
    )
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return APIError(status, str(exc), type=kind, param=exc.param, code=exc.code, headers=headers)


def error_response(exc: APIError) -> JSONResponse:
    """Render an APIError."""
    return JSONResponse(
        envelope(exc.message, exc.type, exc.param, exc.code),
        status_code=exc.status,
        headers=exc.headers,
    )


def as_api_error(exc: Exception) -> APIError:
    """Any exception as the APIError it is answered with (a bug: a bare 500, logged)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, model_errors.ModelError):
        return from_model_error(exc)
    log.error("unhandled error in a stream", exc_info=exc)
    return APIError(500, "Internal server error; see the server log.", type="server_error")


def error_body(exc: Exception) -> dict[str, Any]:
    """The envelope of any exception, for an error event inside a stream."""
    api = as_api_error(exc)
    return envelope(api.message, api.type, api.param, api.code)


def _validation_error(exc: RequestValidationError) -> APIError:
    """A body that does not parse, or breaks a rule: 400 invalid_request_error naming the field."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    if first.get("type") == "json_invalid":
        return APIError(
            400, f"Request body is not valid JSON: {first.get('msg')}", code="invalid_json"
        )
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "extra_forbidden":
        return APIError(
            400,
            f"{param}: unknown field; this server does not support it (see the README's list)",
            param=param,
            code="unsupported_field",
        )
    text = str(first.get("msg")).removeprefix("Value error, ")
    refused = _REFUSED.match(text)
    if param is None and refused:  # a field refused by name (see protocol.common.refuse)
        param = refused.group(1)
    message = f"{param}: {text}" if param else text
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more problems)"
    code = "unsupported_field" if "not supported by this server" in text else "invalid_value"
    return APIError(400, message, param=param, code=code)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the error envelope (400, not 422) on every operation."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorDetail, ErrorResponse):
        schemas[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
    envelope_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if answers.pop("422", None) is not None:
                answers["400"] = {
                    "description": "Invalid request",
                    "content": {"application/json": {"schema": envelope_ref}},
                }
            answers["default"] = {
                "description": "Any other error, in the same envelope",
                "content": {"application/json": {"schema": envelope_ref}},
            }
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    app.openapi_schema = document
    return document


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, ours or the framework's, answer with the envelope."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(model_errors.ModelError)
    async def _model_error(_: Request, exc: model_errors.ModelError) -> JSONResponse:
        return error_response(from_model_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(APIError(exc.status_code, str(exc.detail), code=code))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            APIError(500, "Internal server error; see the server log.", type="server_error")
        )

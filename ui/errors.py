"""Server failures turned into one readable sentence for the person using the UI."""

from __future__ import annotations

from typing import Any

import httpx
import openai


class UserFacingError(Exception):
    """A failure (mostly of the server) with a message fit for the person using the UI."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        detail: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail  # the server's own message, without the UI's framing
        self.param = param  # the envelope's `param`: the field the server named


def _envelope_field(body: Any, key: str) -> str | None:
    """One string field (`message`, `param`) of an error envelope, whole or already unwrapped."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get(key), str):
            return str(inner[key])
    return None


def _envelope_message(body: Any) -> str | None:
    """The `message` of an error envelope, if there is one."""
    return _envelope_field(body, "message")


def describe_status(
    status: int, detail: str | None, base_url: str, param: str | None = None
) -> UserFacingError:
    """A readable problem for an HTTP error status from the server."""
    raw = detail
    detail = detail or "no details"
    if status == 401:
        text = (
            f"The server at {base_url} refused the API key (401): {detail} "
            "Start the UI with --api-key or MYLLAMA_API_KEY."
        )
    elif status == 429:
        text = f"The server is busy (429): {detail} Wait a moment and try again."
    elif status in (400, 422):
        text = f"The server rejected the request ({status}): {detail}"
    elif status == 404:
        text = f"Not found on the server (404): {detail}"
    elif status == 503:
        text = f"The server is not ready yet (503): {detail}"
    else:
        text = f"The server answered with an error ({status}): {detail}"
    return UserFacingError(text, status, raw, param)


def unreachable(base_url: str) -> UserFacingError:
    """The server is down or not started yet."""
    return UserFacingError(
        f"Cannot reach the server at {base_url}. Is it running (`myllama serve`)? "
        "It may still be starting: try again in a few seconds."
    )


def from_httpx(exc: httpx.HTTPError, base_url: str) -> UserFacingError:
    """Translate an httpx failure."""
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            body = exc.response.json()
        except ValueError:
            body = None
        detail = _envelope_message(body) or exc.response.text[:200] or None
        param = _envelope_field(body, "param")
        return describe_status(exc.response.status_code, detail, base_url, param)
    if isinstance(exc, httpx.TimeoutException):
        return UserFacingError(f"The server at {base_url} did not answer in time.")
    return unreachable(base_url)


def from_openai(exc: openai.APIError, base_url: str) -> UserFacingError:
    """Translate an `openai` SDK failure, including an error event inside a stream."""
    if isinstance(exc, openai.APITimeoutError):
        return UserFacingError(f"The server at {base_url} did not answer in time.")
    if isinstance(exc, openai.APIConnectionError):
        return unreachable(base_url)
    detail = _envelope_message(exc.body) or exc.message
    if isinstance(exc, openai.APIStatusError):
        return describe_status(exc.status_code, detail, base_url)
    return UserFacingError(f"The server stopped the answer: {detail}")

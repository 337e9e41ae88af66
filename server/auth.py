"""The request guard: API key and body-size checks before anything reads the body (pure ASGI)."""

from __future__ import annotations

import json
import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError, error_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
OPEN_PATHS = ("/health", "/metrics", "/docs", "/redoc", "/openapi.json")  # no key needed
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _unauthorized() -> APIError:
    return APIError(
        401,
        "Missing or invalid API key. Send 'Authorization: Bearer YOUR_KEY' (or 'x-api-key').",
        code="invalid_api_key",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"The request body is larger than this server's limit of {limit} bytes.",
        code="request_too_large",
    )


class RequestGuard:
    """Refuses a request before its body is read: wrong key (401), body too large (413).

    A body within the limit is read once here and replayed to the app, so no route ever sees
    more than `max_body_bytes` and nothing parses a body an unauthenticated client sent.
    """

    def __init__(self, app: ASGIApp, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key is not None else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then hand it (with its buffered body) to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        needs_key = self.api_key is not None and not scope["path"].startswith(OPEN_PATHS)
        if needs_key and not self._authorized(headers):
            await error_response(_unauthorized())(scope, receive, send)
            return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await error_response(_too_large(self.max_body_bytes))(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            await error_response(_too_large(self.max_body_bytes))(scope, receive, send)
            return
        if _has_lone_surrogate(body):
            await error_response(_not_text())(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        """A bearer token (OpenAI clients) or an x-api-key header (Anthropic clients)."""
        assert self.api_key is not None
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and secrets.compare_digest(token.strip(), self.api_key):
            return True
        return secrets.compare_digest(headers.get(b"x-api-key", b"").strip(), self.api_key)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _not_text() -> APIError:
    return APIError(
        400,
        "The JSON body contains a lone UTF-16 surrogate escape (\\uD800-\\uDFFF): not text.",
        code="invalid_json",
    )


def _has_lone_surrogate(body: bytes) -> bool:
    """True when the JSON decodes to a string no UTF-8 can hold (paired escapes are fine)."""
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False  # the app answers malformed JSON itself
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the buffered body once, then waits for the real disconnect."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

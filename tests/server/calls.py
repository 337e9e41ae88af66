"""Raw HTTP calls to the server under test and the error-envelope check."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Server


def post(server: Server, path: str, **kwargs: Any) -> httpx.Response:
    """POST to a /v1 path with the server's key."""
    headers = {**server.headers(), **kwargs.pop("headers", {})}
    return httpx.post(f"{server.v1}{path}", headers=headers, timeout=60, **kwargs)


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The response is an error of this status in the one envelope; returns its `error`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "error" in body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert "Traceback" not in error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error

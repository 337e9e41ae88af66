"""Optional bearer-token auth for /v1 routes, compared in constant time."""

from __future__ import annotations

import secrets

from fastapi import Request

from server.errors import APIError


async def require_api_key(request: Request) -> None:
    """Reject the request unless it carries the configured API key."""
    key = request.app.state.settings.api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected):
        raise APIError(
            401,
            "Missing or invalid API key. Send 'Authorization: Bearer YOUR_KEY'.",
            param=None,
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )

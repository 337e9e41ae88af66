"""HTTP metrics middleware (pure ASGI): requests by route template, method and status, latency."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.metrics import Metrics

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """Raw path -> the template of the route it matches ('/v1/predict/{name}'), never the raw
    path, so the label's values are bounded by the app's routes (401s and 413s included, which
    are answered before routing)."""

    def __init__(self) -> None:
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def _build(self, app: Any) -> list[tuple[re.Pattern[str], str]]:
        templates = list(app.openapi().get("paths", {}))
        templates += [
            r.path for r in app.router.routes if isinstance(getattr(r, "path", None), str)
        ]
        return [(compile_path(t)[0], t) for t in dict.fromkeys(templates)]

    def __call__(self, scope: Scope) -> str:
        """The template of this request's route, or 'unmatched'."""
        if self._table is None:
            self._table = self._build(scope["app"])
        path = scope["path"]
        return next((t for regex, t in self._table if regex.match(path)), UNMATCHED)


class HTTPMetrics:
    """Counts every HTTP answer and times it to its last byte (streams included)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.route_template = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record route, method, status and duration when it ends."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is a server error

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = self.route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.http_requests.labels(route, method, str(status)).inc()
            self.metrics.http_latency.labels(route, method).observe(time.perf_counter() - started)

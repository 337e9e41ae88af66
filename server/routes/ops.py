"""Unauthenticated operational routes: /health and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.errors import APIError, error_response

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """200 once the models are loaded; 503 while loading or after a failed load."""
    state = request.app.state
    if state.load_error is not None:
        failed = APIError(
            503,
            "The models failed to load; see the server log.",
            type="server_error",
            code="model_load_failed",
        )
        return error_response(failed)
    if not state.ready.is_set():
        loading = APIError(
            503,
            "The models are loading.",
            type="server_error",
            code="model_loading",
            headers={"Retry-After": "2"},
        )
        return error_response(loading)
    return JSONResponse(
        {
            "status": "ok",
            "default_model": state.pool.default_model,
            "models": {name: e.info() for name, e in state.pool.engines.items()},
        }
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

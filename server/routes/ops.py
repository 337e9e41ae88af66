"""Unauthenticated operational routes: liveness, readiness (/health is readiness) and /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.predictors.registry import predictor_states
from server.errors import envelope
from server.settings import ServerSettings

router = APIRouter()


def _models_state(state: Any, watchdog_s: float) -> dict[str, Any]:
    if state.load_error is not None:
        return {"state": "failed", "error": state.load_error}
    if not state.ready.is_set():
        return {"state": "loading"}
    stalled = {e.model_id: e.stalled_for() for e in state.pool.unique()}
    stuck = {name: round(s, 1) for name, s in stalled.items() if s > watchdog_s}
    if stuck:
        return {"state": "stalled", "stalled_seconds": stuck}
    return {"state": "ready", "served": sorted(state.pool.engines)}


def _predictors_state(state: Any, settings: ServerSettings) -> dict[str, Any]:
    if not settings.load_predictors:
        return {"state": "disabled"}
    each = predictor_states(state.predictors, state.predictors_error)
    details = {p.name: {"state": p.status, "message": p.message} for p in each}
    if any(p.status == "loading" for p in each):
        return {"state": "loading", "predictors": details}
    if any(p.status == "failed" for p in each):
        return {"state": "failed", "predictors": details}
    return {"state": "ready", "predictors": details}


_NOT_READY = {
    "loading": "{name}_loading",
    "failed": "{name}_load_failed",
    "stalled": "engine_stalled",
}


def readiness(request: Request) -> tuple[bool, dict[str, Any]]:
    """Whether every configured part can serve, and each part's state."""
    state = request.app.state
    settings: ServerSettings = state.settings
    parts = {
        "models": _models_state(state, settings.watchdog_s),
        "predictors": _predictors_state(state, settings),
        "embedder": {"state": "ready" if state.embedder.loaded else "loads on first use"},
    }
    ready = all(p["state"] not in _NOT_READY for p in parts.values())
    return ready, parts


@router.get("/health/live")
async def live() -> dict[str, str]:
    """200 while the process can answer HTTP (Kubernetes liveness)."""
    return {"status": "alive"}


@router.get("/health/ready")
async def ready(request: Request) -> JSONResponse:
    """200 only when every configured part is ready; 503 otherwise (Kubernetes readiness)."""
    ok, parts = readiness(request)
    if ok:
        state = request.app.state
        return JSONResponse(
            {
                "status": "ok",
                "default_model": state.pool.default_model,
                "models": {name: e.info() for name, e in state.pool.engines.items()},
                "parts": parts,
            }
        )
    name, part = next((n, p) for n, p in parts.items() if p["state"] in _NOT_READY)
    code = _NOT_READY[part["state"]].format(name=name.removesuffix("s"))
    body = envelope(f"not ready: {name} {part['state']}", "server_error", None, code)
    return JSONResponse(
        {**body, "status": "not_ready", "parts": parts},
        status_code=503,
        headers={"Retry-After": "2"},
    )


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """The same as /health/ready (kept for clients of the first version)."""
    return await ready(request)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )

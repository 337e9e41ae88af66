"""Annotated dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from models.engine.pool import EnginePool
from server.errors import APIError
from server.metrics import Metrics
from server.settings import ServerSettings


def get_settings(request: Request) -> ServerSettings:
    """The app's settings."""
    settings: ServerSettings = request.app.state.settings
    return settings


def get_pool(request: Request) -> EnginePool:
    """The loaded engines; 503 while they are still loading."""
    pool: EnginePool = request.app.state.pool
    if request.app.state.load_error is not None:
        raise APIError(
            503,
            f"The models failed to load: {request.app.state.load_error}",
            type="server_error",
            code="model_load_failed",
        )
    if not request.app.state.ready.is_set():
        raise APIError(
            503,
            "The model is still loading; retry shortly.",
            type="server_error",
            code="model_loading",
            headers={"Retry-After": "2"},
        )
    return pool


def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
PoolDep = Annotated[EnginePool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

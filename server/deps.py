"""Annotated dependency aliases for routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from models.embedder import Embedder
from models.engine.pool import EnginePool
from models.predictors.prediction_log import PredictionLog
from models.predictors.registry import PredictorRegistry
from server.errors import APIError
from server.metrics import Metrics
from server.settings import ServerSettings


def get_settings(request: Request) -> ServerSettings:
    """The app's settings."""
    settings: ServerSettings = request.app.state.settings
    return settings


def require_loaded(what: str, error: str | None, loaded: bool, retry_after: int) -> None:
    """The one loading-state check: 503 after a failed load, 503 + Retry-After while loading."""
    if error is not None:
        raise APIError(
            503,
            f"The {what} failed to load: {error}",
            type="server_error",
            code="model_load_failed" if what == "models" else f"{what}_unavailable",
        )
    if not loaded:
        raise APIError(
            503,
            f"The {what} are still loading; retry shortly.",
            type="server_error",
            code="model_loading",
            headers={"Retry-After": str(retry_after)},
        )


def get_pool(request: Request) -> EnginePool:
    """The loaded engines; 503 while they are still loading."""
    state = request.app.state
    require_loaded("models", state.load_error, state.ready.is_set(), 2)
    pool: EnginePool = state.pool
    return pool


def get_metrics(request: Request) -> Metrics:
    """The app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_registry(request: Request) -> PredictorRegistry:
    """The loaded predictors; 503 while loading or after a failed load."""
    state = request.app.state
    require_loaded("predictors", state.predictors_error, state.predictors is not None, 1)
    registry: PredictorRegistry = state.predictors
    return registry


def get_prediction_log(request: Request) -> PredictionLog:
    """The SQLite log every served prediction is appended to."""
    prediction_log: PredictionLog = request.app.state.prediction_log
    return prediction_log


def get_embedder(request: Request) -> Embedder:
    """The sentence embedder (its weights load on first use)."""
    embedder: Embedder = request.app.state.embedder
    return embedder


SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
PoolDep = Annotated[EnginePool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RegistryDep = Annotated[PredictorRegistry, Depends(get_registry)]
PredictionLogDep = Annotated[PredictionLog, Depends(get_prediction_log)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]

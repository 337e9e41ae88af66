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


def get_registry(request: Request) -> PredictorRegistry:
    """The loaded predictors; 503 while loading or after a failed load."""
    state = request.app.state
    if state.predictors_error is not None:
        raise APIError(
            503,
            f"The predictors failed to load: {state.predictors_error}",
            type="server_error",
            code="predictors_unavailable",
        )
    if state.predictors is None:
        raise APIError(
            503,
            "The predictors are still loading; retry shortly.",
            type="server_error",
            code="model_loading",
            headers={"Retry-After": "1"},
        )
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

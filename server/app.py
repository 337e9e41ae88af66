"""App factory and lifespan: engines load on app.state, close on shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from models.catalog import build_catalog
from models.completions_log import CompletionsLog
from models.embedder import Embedder
from models.engine.pool import EngineFactory, EnginePool, llama_engine
from models.predictors.prediction_log import PredictionLog
from models.predictors.registry import PredictorRegistry
from server.auth import RequestGuard
from server.drift_metrics import DriftVerdicts
from server.errors import install_error_handlers, openapi_document
from server.http_metrics import HTTPMetrics
from server.metrics import Metrics
from server.routes import (
    chat,
    completions,
    embeddings,
    messages,
    ops,
    predictors,
    responses,
    tokens,
)
from server.routes import models as model_routes
from server.settings import ServerSettings

log = logging.getLogger(__name__)


PredictorLoader = Callable[[ServerSettings], PredictorRegistry]


def load_registry(settings: ServerSettings) -> PredictorRegistry:
    """The default predictor loader: champions (or artefacts) in this process."""
    return PredictorRegistry.load(settings.tracking_uri, settings.predictors_dir)


async def _load_predictors(app: FastAPI, settings: ServerSettings) -> None:
    """Load the champions (or artefacts) off the event loop."""
    try:
        app.state.predictors = await asyncio.to_thread(app.state.predictor_loader, settings)
    except Exception as exc:
        log.exception("loading the predictors failed")
        app.state.predictors_error = str(exc)


def _start_predictors(app: FastAPI) -> asyncio.Task[None] | None:
    """Open the prediction log and start loading the predictors."""
    settings: ServerSettings = app.state.settings
    app.state.predictors = None
    app.state.predictors_error = None
    app.state.prediction_log = PredictionLog(
        settings.prediction_log,
        max_pending_rows=settings.prediction_log_max_rows,
        flush_interval=settings.prediction_log_flush_interval,
        enqueue_timeout=settings.prediction_log_wait,
        close_timeout=settings.prediction_log_close_timeout,
    )
    if not settings.load_predictors:
        app.state.predictors = PredictorRegistry.disabled()
        return None
    return asyncio.create_task(_load_predictors(app, settings))


async def _load(app: FastAPI) -> None:
    """Load the weights off the event loop; /health says 503 until done."""
    try:
        await asyncio.to_thread(app.state.pool.load)
        app.state.ready.set()
        log.info("ready: %s", ", ".join(app.state.pool.engines))
    except Exception as exc:
        log.exception("loading the models failed")
        app.state.load_error = str(exc)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start loading engines and predictors; on shutdown flush the log, close the engines."""
    loader = asyncio.create_task(_load(app))
    predictor_loader = _start_predictors(app)
    try:
        yield
    finally:
        try:
            if predictor_loader is not None:
                predictor_loader.cancel()
            app.state.prediction_log.close()  # nothing logged is lost on a clean shutdown
            if app.state.completions_log is not None:
                app.state.completions_log.close()
        finally:
            await asyncio.shield(loader)  # a load in progress finishes before the engines close
            app.state.pool.close()


def create_app(
    settings: ServerSettings,
    *,
    engine_factory: EngineFactory = llama_engine,
    predictor_loader: PredictorLoader = load_registry,
) -> FastAPI:
    """Build the FastAPI app for these settings (nothing is read from the environment).

    The factories say where engines and predictors run: in this process by default, or
    elsewhere (Ray replicas, a fake in unit tests) behind the same interfaces.
    """
    app = FastAPI(title="My LLAMA", version="0.1.0", lifespan=lifespan)
    specs = build_catalog(settings.models, settings.model, settings.tracking_uri)
    app.state.settings = settings
    app.state.predictor_loader = predictor_loader
    config = settings.engine_config(settings.max_tokens_limit)
    app.state.pool = EnginePool(specs, config, settings.default_model, engine_factory)
    app.state.ready = asyncio.Event()
    app.state.load_error = None
    app.state.started_at = int(time.time())
    app.state.metrics = Metrics(app.state.pool.unique, settings.watchdog_s)
    if settings.drift_experiment:
        app.state.drift_verdicts = DriftVerdicts(settings.tracking_uri, settings.drift_experiment)
        app.state.metrics.registry.register(app.state.drift_verdicts)
    log_path = settings.log_completions
    app.state.completions_log = CompletionsLog(log_path) if log_path is not None else None
    app.state.embedder = Embedder()  # loads its weights on the first /v1/embeddings call
    install_error_handlers(app)
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None
    app.add_middleware(RequestGuard, api_key=key, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(HTTPMetrics, metrics=app.state.metrics)  # outermost: sees 401s and 413s
    v1 = APIRouter(prefix="/v1")
    for module in (chat, completions, responses, messages, embeddings, model_routes, predictors):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(tokens.router)
    app.include_router(ops.router)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app

"""GET /v1/predictors and POST /v1/predict/{name}: the classical predictors over HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from models.predictors.prediction_log import PredictionLog
from models.predictors.registry import PredictorRegistry
from models.predictors.schema import InvalidInput
from server.errors import APIError
from server.settings import ServerSettings

log = logging.getLogger(__name__)

router = APIRouter()


class PredictRequest(BaseModel):
    """A batch of records to score; each record is checked against the predictor's schema."""

    inputs: list[Any] = Field(description="One object of features per record.")


async def _load(app: FastAPI, settings: ServerSettings) -> None:
    """Load the champions (or artefacts) off the event loop."""
    try:
        app.state.predictors = await asyncio.to_thread(
            PredictorRegistry.load, settings.tracking_uri, settings.predictors_dir
        )
    except Exception as exc:
        log.exception("loading the predictors failed")
        app.state.predictors_error = str(exc)


def start(app: FastAPI) -> asyncio.Task[None] | None:
    """Open the prediction log and start loading the predictors (lifespan start)."""
    settings: ServerSettings = app.state.settings
    app.state.predictors = None
    app.state.predictors_error = None
    app.state.prediction_log = PredictionLog(settings.prediction_log)
    if not settings.load_predictors:
        app.state.predictors = PredictorRegistry.disabled()
        return None
    return asyncio.create_task(_load(app, settings))


def stop(app: FastAPI) -> None:
    """Flush the prediction log (lifespan end): nothing is lost on a clean shutdown."""
    app.state.prediction_log.close()


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


RegistryDep = Annotated[PredictorRegistry, Depends(get_registry)]


@router.get("/predictors")
def list_predictors(registry: RegistryDep) -> dict[str, Any]:
    """Every loaded predictor: version, source, input JSON Schema, classes, held-out metrics."""
    return {"object": "list", "data": registry.cards()}


@router.post("/predict/{name}")
def predict(
    name: str, body: PredictRequest, registry: RegistryDep, request: Request
) -> dict[str, Any]:
    """Score one or many records; each prediction is queued for the prediction log."""
    predictor = registry.get(name)
    try:
        records = predictor.validate(body.inputs)
    except InvalidInput as exc:
        raise APIError(422, str(exc), param=exc.param, code="invalid_value") from exc
    outputs = predictor.predict(records)
    request.app.state.prediction_log.record(name, predictor.version, records, outputs)
    return {"model": name, "version": predictor.version, "predictions": outputs}

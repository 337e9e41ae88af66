"""GET /v1/predictors, POST /v1/predict/{name} and its /feedback: the predictors over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from fastapi import APIRouter

from models.predictors.feedback import record_feedback
from models.predictors.prediction_log import PredictionLogFull
from models.predictors.schema import InvalidInput
from server.deps import MetricsDep, PredictionLogDep, RegistryDep
from server.protocol.predictors import FeedbackRequest, PredictRequest

router = APIRouter()


@router.get("/predictors")
def list_predictors(registry: RegistryDep) -> dict[str, Any]:
    """Every loaded predictor: version, source, input JSON Schema, classes, held-out metrics."""
    return {"object": "list", "data": registry.cards()}


@router.post("/predict/{name}")
def predict(
    name: str,
    body: PredictRequest,
    registry: RegistryDep,
    prediction_log: PredictionLogDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    """Score one or many records; answered only once queued for the prediction log (else 503)."""
    predictor = registry.get(name)
    started = time.perf_counter()
    try:
        records = predictor.validate(body.inputs)
    except InvalidInput:
        metrics.predictor_requests.labels(name, "invalid").inc()
        raise
    outputs = predictor.predict(records)
    metrics.predictor_latency.labels(name).observe(time.perf_counter() - started)
    for label, count in Counter(str(o["label"]) for o in outputs).items():
        metrics.predicted_class.labels(name, label).inc(count)
    try:
        ids = prediction_log.record(name, predictor.version, records, outputs)
    except PredictionLogFull:
        metrics.predictor_requests.labels(name, "log_full").inc()
        raise
    metrics.predictor_requests.labels(name, "ok").inc()
    predictions = [{"id": i, **out} for i, out in zip(ids, outputs, strict=True)]
    return {"model": name, "version": predictor.version, "predictions": predictions}


@router.post("/predict/{name}/feedback")
def feedback(
    name: str, body: FeedbackRequest, registry: RegistryDep, prediction_log: PredictionLogDep
) -> dict[str, Any]:
    """True labels for served predictions: stored once, repeats are no-ops, changes are 409."""
    predictor = registry.get(name)
    items = [(item.id, item.label) for item in body.feedback]
    counts = record_feedback(prediction_log.path, name, predictor.classes, items)
    return {"object": "feedback", "model": name, **counts}

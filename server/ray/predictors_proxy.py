"""Predictors whose scoring runs on the predictors deployment; validation stays in the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.predictors.registry import Predictor, PredictorRegistry
from server.ray.engine_proxy import model_error


@dataclass(frozen=True)
class RemotePredictor(Predictor):
    """A predictor card whose predict() is a call to a predictors replica."""

    handle: Any = None

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Label and probabilities, scored on a replica (call off the event loop)."""
        try:
            result: list[dict[str, Any]] = self.handle.predict.remote(self.name, records).result()
        except Exception as exc:
            error = model_error(exc)
            if error is not None:
                raise error from None
            raise
        return result


def remote_registry(handle: Any) -> PredictorRegistry:
    """The registry the app serves: each predictor's card from a replica, scoring remote."""
    described: dict[str, Any] = handle.describe.remote().result()
    predictors: dict[str, Predictor] = {
        name: RemotePredictor(
            name=name,
            version=str(card["version"]),
            source=str(card["source"]),
            pipeline=None,  # the pipeline lives on the replicas
            input_schema=card["input_schema"],
            classes=list(card["classes"]),
            metrics=dict(card["metrics"]),
            handle=handle,
        )
        for name, card in described["cards"].items()
    }
    states = {state.name: state for state in described["states"]}
    return PredictorRegistry(predictors, states=states)

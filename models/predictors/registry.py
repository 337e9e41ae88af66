"""The servable predictors: each one's MLflow champion, or else its trained artefact."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from models.errors import ModelNotFound
from models.predictors.schema import to_frame, validate_records
from models.predictors.tracking import offline, store_exists

log = logging.getLogger(__name__)

PREDICTOR_NAMES: tuple[str, ...] = ("iris", "income", "churn")
ALIAS = "champion"
MODEL_FILE = "model.joblib"
CARD_FILE = "predictor.json"
# Types our own pipelines contain that skops does not trust by default; we wrote these files.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]

_threads = ThreadpoolController()


@dataclass(frozen=True)
class Predictor:
    """One loaded predictor: its pipeline, input schema, classes and held-out metrics."""

    name: str
    version: str
    source: str  # "mlflow" or "artefact"
    pipeline: Pipeline
    input_schema: dict[str, Any]
    classes: list[str]
    metrics: dict[str, float]

    def card(self) -> dict[str, Any]:
        """The public description served by GET /v1/predictors."""
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "input_schema": self.input_schema,
            "classes": self.classes,
            "metrics": self.metrics,
        }

    def validate(self, records: list[Any]) -> list[dict[str, Any]]:
        """The records checked against the input schema (InvalidInput names the bad field)."""
        return validate_records(self.input_schema, records)

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Label and class probabilities for validated records (one OpenMP thread per call)."""
        frame = to_frame(self.input_schema, records)
        with _threads.limit(limits=1, user_api="openmp"):
            proba = self.pipeline.predict_proba(frame)
        classes = [str(c) for c in self.pipeline.classes_]
        return [
            {
                "label": classes[int(row.argmax())],
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            for row in proba
        ]


def _from_mlflow(name: str, tracking_uri: str) -> Predictor | None:
    """The registered champion, or None when MLflow has none; card and model of the same version."""
    offline()
    import mlflow
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None
    mlflow.set_tracking_uri(tracking_uri)
    card = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{CARD_FILE}")
    pipeline = mlflow.sklearn.load_model(f"models:/{name}/{version.version}")
    return Predictor(
        name,
        str(version.version),
        "mlflow",
        pipeline,
        card["input_schema"],
        card["classes"],
        card["metrics"],
    )


def _from_artefact(name: str, predictors_dir: Path) -> Predictor | None:
    """The artefact `myllama train` saved, or None."""
    folder = predictors_dir / name
    if not (folder / CARD_FILE).is_file():
        return None
    card = json.loads((folder / CARD_FILE).read_text())
    pipeline = joblib.load(folder / MODEL_FILE)
    return Predictor(
        name,
        str(card["version"]),
        "artefact",
        pipeline,
        card["input_schema"],
        card["classes"],
        card["metrics"],
    )


def _load_one(name: str, tracking_uri: str | None, predictors_dir: Path) -> Predictor | None:
    """One predictor: its champion, else its artefact; a broken one is logged, never raised."""
    if tracking_uri is not None:
        try:
            found = _from_mlflow(name, tracking_uri)
        except Exception:
            log.exception("could not load %s@%s from MLflow; trying the artefact", name, ALIAS)
        else:
            if found is not None:
                return found
            log.info("MLflow has no %s@%s; trying the artefact", name, ALIAS)
    try:
        return _from_artefact(name, predictors_dir)
    except Exception:
        log.exception("could not load the %s artefact from %s", name, predictors_dir / name)
        return None


class PredictorRegistry:
    """The loaded predictors by name; lookups fail with ModelNotFound (404)."""

    def __init__(self, predictors: dict[str, Predictor], enabled: bool = True) -> None:
        self.predictors = predictors
        self.enabled = enabled

    @classmethod
    def load(cls, tracking_uri: str, predictors_dir: Path) -> PredictorRegistry:
        """Each predictor's MLflow champion, else its artefact (said in the log), else nothing."""
        use_mlflow = store_exists(tracking_uri)
        if not use_mlflow:
            log.info("no MLflow store at %s; looking for artefacts only", tracking_uri)
        loaded: dict[str, Predictor] = {}
        for name in PREDICTOR_NAMES:
            found = _load_one(name, tracking_uri if use_mlflow else None, Path(predictors_dir))
            if found is None:
                log.warning("predictor %s is not trained; run `myllama train %s`", name, name)
                continue
            loaded[name] = found
            log.info("predictor %s v%s loaded from %s", name, found.version, found.source)
        return cls(loaded)

    @classmethod
    def disabled(cls) -> PredictorRegistry:
        """An empty registry for a server started with --no-load-predictors."""
        return cls({}, enabled=False)

    def cards(self) -> list[dict[str, Any]]:
        """The public description of every loaded predictor."""
        return [p.card() for p in self.predictors.values()]

    def get(self, name: str) -> Predictor:
        """One predictor, or ModelNotFound saying why."""
        if name in self.predictors:
            return self.predictors[name]
        if name in PREDICTOR_NAMES and not self.enabled:
            raise ModelNotFound(
                f"The predictor {name!r} is not loaded: the server runs with --no-load-predictors"
            )
        if name in PREDICTOR_NAMES:
            raise ModelNotFound(
                f"The predictor {name!r} is not trained yet: run `myllama train {name}`"
            )
        raise ModelNotFound(
            f"No predictor named {name!r}; the predictors are: {', '.join(PREDICTOR_NAMES)}"
        )

"""Train one predictor on its fixed split, save the artefact, log and register it in MLflow."""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline

from models.predictors.datasets import LABEL, SEED, TEST_SIZE, Split, load_split
from models.predictors.pipelines import build_pipeline
from models.predictors.registry import ALIAS, CARD_FILE, MODEL_FILE, SKOPS_TRUSTED_TYPES
from models.predictors.schema import input_schema
from models.predictors.tracking import offline

log = logging.getLogger(__name__)

EXPERIMENT = "predictors"
REFERENCE_PREDICTIONS = "reference_predictions.csv"  # the run's predictions on its training split


@dataclass(frozen=True)
class TrainResult:
    """What one training produced."""

    name: str
    version: str
    metrics: dict[str, float]
    run_id: str


def held_out_metrics(pipeline: Pipeline, test: pd.DataFrame) -> dict[str, float]:
    """Accuracy, F1 and ROC-AUC on the held-out split (macro / one-vs-rest for many classes)."""
    features, truth = test.drop(columns=LABEL), test[LABEL]
    proba = pipeline.predict_proba(features)
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    classes = list(pipeline.classes_)
    if len(classes) == 2:
        f1 = f1_score(truth, predicted, pos_label=classes[1])
        auc = roc_auc_score(truth == classes[1], proba[:, 1])
    else:
        f1 = f1_score(truth, predicted, average="macro")
        auc = roc_auc_score(truth, proba, multi_class="ovr", labels=classes)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1),
        "roc_auc": float(auc),
    }


def reference_predictions(pipeline: Pipeline, reference: pd.DataFrame) -> pd.DataFrame:
    """The model's predicted label and class probabilities for every row of its reference split."""
    proba = pipeline.predict_proba(reference.drop(columns=LABEL))
    classes = [str(c) for c in pipeline.classes_]
    frame = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes])
    frame.insert(0, "prediction", [classes[i] for i in proba.argmax(axis=1)])
    return frame


def _params(name: str, pipeline: Pipeline, split: Split) -> dict[str, Any]:
    """The run's parameters: the model, its scalar hyper-parameters, the split."""
    model = pipeline.named_steps["model"]
    hyper = {
        f"model.{k}": v
        for k, v in model.get_params().items()
        if isinstance(v, int | float | str | bool) or v is None
    }
    return {
        "predictor": name,
        "model": type(model).__name__,
        "seed": SEED,
        "test_size": TEST_SIZE if name != "income" else "official adult.test",
        "n_train": len(split.train),
        "n_test": len(split.test),
        "data_source": split.source,
        **hyper,
    }


def _log_to_mlflow(
    name: str, pipeline: Pipeline, split: Split, card: dict[str, Any], tracking_uri: str
) -> tuple[str, str]:
    """Log params, metrics, data, the model (signature + example); register it as champion."""
    import sklearn
    import skops

    offline()
    import mlflow
    import mlflow.sklearn
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    features = split.train.drop(columns=LABEL)
    with mlflow.start_run(run_name=f"train-{name}") as run:
        mlflow.log_params(_params(name, pipeline, split))
        mlflow.log_metrics(card["metrics"])
        mlflow.log_input(
            from_pandas(split.train, name=f"{name}-train", targets=LABEL),
            context="training",
        )
        mlflow.log_input(
            from_pandas(split.test, name=f"{name}-test", targets=LABEL),
            context="evaluation",
        )
        mlflow.log_dict(card, CARD_FILE)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / REFERENCE_PREDICTIONS
            reference_predictions(pipeline, split.train).to_csv(path, index=False)
            mlflow.log_artifact(str(path))
        example = features.head(3)
        with warnings.catch_warnings():
            # our inputs never hold missing integers; MLflow's hint about them is noise here
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            info = mlflow.sklearn.log_model(
                pipeline,
                name="model",
                signature=infer_signature(example, pipeline.predict(example)),
                input_example=example,
                registered_model_name=name,
                pip_requirements=[
                    f"scikit-learn=={sklearn.__version__}",
                    f"skops=={skops.__version__}",
                    "pandas",
                    "numpy",
                ],
                serialization_format="skops",  # the server loads it with its own allow-list
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias(name, ALIAS, version)
    return version, run.info.run_id


def save_artefact(folder: Path, pipeline: Pipeline, card: dict[str, Any]) -> None:
    """The trained pipeline (skops, never a pickle) and its card, for a server without MLflow."""
    import skops.io

    folder.mkdir(parents=True, exist_ok=True)
    skops.io.dump(pipeline, folder / MODEL_FILE)
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2))


def train(
    name: str,
    tracking_uri: str,
    predictors_dir: Path,
    step: Callable[[str], None] = lambda _: None,
) -> TrainResult:
    """Fit, evaluate, register in MLflow (alias champion), save the artefact; `step` reports."""
    step("loading data")
    split = load_split(name)
    schema = input_schema(split.train)
    pipeline = build_pipeline(name, schema)
    step(f"fitting on {len(split.train):,} rows")
    pipeline.fit(split.train.drop(columns=LABEL), split.train[LABEL])
    step(f"evaluating on {len(split.test):,} held-out rows")
    card: dict[str, Any] = {
        "name": name,
        "input_schema": schema,
        "classes": [str(c) for c in pipeline.classes_],
        "metrics": held_out_metrics(pipeline, split.test),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    step("logging to MLflow")
    version, run_id = _log_to_mlflow(name, pipeline, split, card, tracking_uri)
    step("saving the artefact")
    save_artefact(Path(predictors_dir) / name, pipeline, {**card, "version": version})
    log.info("%s v%s: %s", name, version, card["metrics"])
    return TrainResult(name, version, card["metrics"], run_id)

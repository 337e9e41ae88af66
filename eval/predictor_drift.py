"""`myllama eval drift`: a predictor's logged traffic against its training data, in MLflow."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from eval import plots
from eval.settings import TabularDriftSettings
from eval.tabular_drift import TEST_METHODS, table_drift
from eval.tracking import KIND_TAG, EvalError
from models.predictors.datasets import LABEL, load_training_frame
from models.predictors.prediction_log import read_predictions

log = logging.getLogger(__name__)


def execute(settings: TabularDriftSettings) -> dict[str, Any]:
    """Compare, log one MLflow run, and return the last-line JSON."""
    reference = load_training_frame(settings.predictor)
    current = read_predictions(settings.prediction_log, settings.predictor, settings.since)
    if current.empty:
        since = f" since {settings.since.isoformat()}" if settings.since else ""
        raise EvalError(
            f"no {settings.predictor} predictions{since} in {settings.prediction_log}; "
            "serve some traffic first"
        )
    result = table_drift(reference, current, label=LABEL, use_psi=settings.psi)
    table = result.frame()
    drifted = [c.column for c in result.features if c.drifted]
    reason = (
        f"{len(drifted)} of {len(result.features)} features drifted "
        f"({result.share_drifted:.0%}; data-set drift needs ≥ 50 %)"
        + (f": {', '.join(drifted)}" if drifted else "")
        + (
            f"; label drifted ({result.label.method})"
            if result.label and result.label.drifted
            else ""
        )
    )
    metrics: dict[str, float] = {
        "share_drifted_features": result.share_drifted,
        "drifted_features": float(len(drifted)),
        "dataset_drift": float(result.dataset_drift),
        "reference_rows": float(len(reference)),
        "current_rows": float(len(current)),
    }
    for column in [*result.features, *([result.label] if result.label else [])]:
        metrics[f"{column.column}.{column.method}"] = column.statistic
        metrics[f"{column.column}.drifted"] = float(column.drifted)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"drift-{settings.predictor}") as run:
        mlflow.set_tags(
            {
                KIND_TAG: "tabular-drift",
                "predictor": settings.predictor,
                "drift.verdict": "drift" if result.dataset_drift else "no_drift",
                "drift.reason": reason,
                "drifted_features": ",".join(drifted),
            }
        )
        mlflow.log_params(
            {
                "predictor": settings.predictor,
                "since": settings.since.isoformat() if settings.since else None,
                "prediction_log": str(settings.prediction_log),
                "psi": settings.psi,
                "versions": ",".join(sorted(current["version"].astype(str).unique()))[:500],
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_table(table, "drift_table.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            table.to_csv(folder / "drift_table.csv", index=False)
            mlflow.log_artifact(str(folder / "drift_table.csv"))
            for column in [*result.features, *([result.label] if result.label else [])]:
                path = folder / f"{column.column}.png"
                plots.distribution(
                    column.column,
                    reference[column.column],
                    current[column.column],
                    column.kind,
                    path,
                )
                mlflow.log_artifact(str(path), "distributions")
    tests = [c.statistic for c in result.features if c.method in TEST_METHODS]
    drift = {
        "detected": result.dataset_drift,
        "p_value": min(tests) if tests else None,
        "reason": reason,
        "share_drifted_features": result.share_drifted,
        "drifted_features": drifted,
        "label_drift": bool(result.label and result.label.drifted),
        "columns": table.to_dict(orient="records"),
    }
    return {"run_id": run.info.run_id, "status": "FINISHED", "metrics": metrics, "drift": drift}

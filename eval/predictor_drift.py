"""`myllama eval drift --predictor NAME`: logged traffic against the training split, in MLflow."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from eval import plots, report
from eval.performance_drift import champion, performance
from eval.settings import DriftSettings
from eval.tabular_drift import MIN_ROWS, feature_tests, labels_test
from eval.tracking import KIND_TAG, EvalError
from eval.verdict import DRIFT, NO_DRIFT, Check, Verdict, decide
from models.predictors.datasets import LABEL, load_training_frame
from models.predictors.feedback import read_labelled
from models.predictors.prediction_log import read_predictions
from models.predictors.registry import ALIAS
from models.predictors.train import REFERENCE_PREDICTIONS

log = logging.getLogger(__name__)


def reference_predictions(
    client: MlflowClient, predictor: str, versions: list[str]
) -> tuple[pd.Series | None, str]:
    """The champion's (or the logged version's) predictions on its training split, and whence."""
    try:
        if len(versions) == 1:
            version = client.get_model_version(predictor, versions[0])
        else:
            version = client.get_model_version_by_alias(predictor, ALIAS)
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(str(version.run_id), REFERENCE_PREDICTIONS, tmp)
            frame = pd.read_csv(path, dtype={"prediction": str})
    except (MlflowException, OSError) as exc:
        return None, f"no {REFERENCE_PREDICTIONS} for {predictor} {versions}: {exc}".splitlines()[0]
    source = (
        f"{predictor} v{version.version} (run {version.run_id}), predictions on its training split"
    )
    return frame["prediction"], source


def _true_labels(path: Path) -> pd.Series:
    """True labels of the window: a CSV with a "label" column (or a single column)."""
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        raise EvalError(f"cannot read the true labels in {path}: {exc}") from exc
    column = LABEL if LABEL in frame.columns else frame.columns[0]
    return frame[column].dropna()


@dataclass
class Comparison:
    """The verdict, the data it came from and what the window was compared with."""

    verdict: Verdict
    reference: pd.DataFrame
    current: pd.DataFrame
    against: dict[str, Any]
    predicted: pd.Series | None = None
    performance: dict[str, Any] | None = None


def compare(settings: DriftSettings, client: MlflowClient) -> Comparison:
    """Check the window's features, predictions (and true labels) against the reference."""
    assert settings.predictor is not None
    if not settings.prediction_log.is_file():
        raise EvalError(f"no prediction log at {settings.prediction_log}")
    reference = load_training_frame(settings.predictor)
    current = read_predictions(settings.prediction_log, settings.predictor, settings.since)
    features = [c for c in reference.columns if c != LABEL]
    sizes = {"reference_rows": len(reference), "current_rows": len(current)}
    versions = sorted(current["version"].astype(str).unique()) if len(current) else []
    against: dict[str, Any] = {
        "features": f"{settings.predictor} training split ({len(reference)} rows)"
    }
    skipped: dict[str, str] = {}
    if len(current) < MIN_ROWS:
        since = f" since {settings.since.isoformat()}" if settings.since else ""
        reason = (
            f"{len(current)} {settings.predictor} predictions{since} in {settings.prediction_log}; "
            f"at least {MIN_ROWS} are needed for a verdict"
        )
        verdict = decide([], settings.alpha, sizes, insufficient=reason)
        return Comparison(verdict, reference, current, against)
    tests = feature_tests(reference, current, features, settings.seed, settings.resamples)
    predicted, source = reference_predictions(client, settings.predictor, versions)
    if predicted is None:
        skipped["prediction"] = source
    else:
        against["prediction"] = source
        tests.append(
            labels_test(
                "prediction",
                "predicted label",
                predicted,
                current[LABEL],
                settings.seed,
                settings.resamples,
            )
        )
        sizes["reference_predictions"] = len(predicted)
    tests += _target(settings, reference, skipped, sizes, against)
    labelled = read_labelled(settings.prediction_log, settings.predictor, settings.since)
    sizes["current_labelled"] = len(labelled)
    found = performance(
        labelled,
        champion(settings.tracking_uri, settings.predictor) if len(labelled) else None,
        settings.seed,
    )
    if found.skipped is not None:
        skipped["performance"] = found.skipped
    else:
        against["performance"] = f"the {settings.predictor} champion on its held-out split"
    tests += found.checks
    verdict = decide(tests, settings.alpha, sizes, skipped)
    if found.checks and verdict.parts:
        drifted = bool(verdict.drifted("performance"))
        found.summary["verdict"] = DRIFT if drifted else NO_DRIFT
    return Comparison(verdict, reference, current, against, predicted, found.summary)


def _target(
    settings: DriftSettings,
    reference: pd.DataFrame,
    skipped: dict[str, str],
    sizes: dict[str, int],
    against: dict[str, Any],
) -> list[Check]:
    """Target drift (true vs true labels) when the window's true labels are given."""
    if settings.true_labels is None:
        skipped["target"] = "no true labels given (--true-labels CSV)"
        return []
    truth = _true_labels(settings.true_labels)
    sizes["current_true_labels"] = len(truth)
    if len(truth) < MIN_ROWS:
        skipped["target"] = f"{len(truth)} true labels; at least {MIN_ROWS} are needed"
        return []
    against["target"] = "true labels of the training split"
    return [
        labels_test(
            "target", "true label", reference[LABEL], truth, settings.seed, settings.resamples
        )
    ]


def _metrics(verdict: Verdict) -> dict[str, float]:
    metrics = {f"{k}": float(v) for k, v in verdict.sample_sizes.items()}
    metrics["drift_detected"] = float(verdict.detected)
    metrics["drifted_tests"] = float(len(verdict.drifted()))
    for p in verdict.parts:
        key = f"{p.part}.{p.name}".replace(" ", "_")
        metrics[f"{key}.statistic"] = p.statistic
        metrics[f"{key}.p_value"] = p.p_value
        metrics[f"{key}.p_adjusted"] = p.p_adjusted
        metrics[f"{key}.drifted"] = float(p.drifted)
    return {k: v for k, v in metrics.items() if v == v}  # no NaN


def execute(settings: DriftSettings) -> dict[str, Any]:
    """Compare, log one MLflow run with the HTML report, and return the last-line JSON."""
    assert settings.predictor is not None
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    found = compare(settings, client)
    verdict, reference, current = found.verdict, found.reference, found.current
    drifted = [p.name for p in verdict.drifted("feature")]
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"drift-{settings.predictor}") as run:
        mlflow.set_tags(
            {
                KIND_TAG: "tabular-drift",
                "predictor": settings.predictor,
                "drift.verdict": verdict.verdict,
                "drift.reason": verdict.reason[:5000],
                "drifted_features": ",".join(drifted),
            }
        )
        mlflow.log_params(
            {
                "predictor": settings.predictor,
                "since": settings.since.isoformat() if settings.since else None,
                "prediction_log": str(settings.prediction_log),
                "alpha": settings.alpha,
                "resamples": settings.resamples,
                "min_rows": MIN_ROWS,
                "versions": ",".join(sorted(current["version"].astype(str).unique()))[:500]
                if len(current)
                else "",
            }
        )
        mlflow.log_metrics(_metrics(verdict))
        table = pd.DataFrame(
            [{k: v for k, v in vars(p).items() if k != "details"} for p in verdict.parts]
        )
        figures = {
            f"feature:{p.name}": plots.distribution_figure(
                p.name, reference[p.name], current[p.name], p.details["kind"]
            )
            for p in verdict.parts
            if p.part == "feature"
        }
        if found.predicted is not None:
            figures["prediction:predicted label"] = plots.distribution_figure(
                "predicted label", found.predicted, current[LABEL], "categorical"
            )
        page = report.render(
            f"Drift of the {settings.predictor} predictor",
            verdict,
            {"run_id": run.info.run_id, **found.against},
            figures,
            performance=found.performance,
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if len(table):
                table.to_csv(folder / "drift_table.csv", index=False)
                mlflow.log_artifact(str(folder / "drift_table.csv"))
            mlflow.log_dict(verdict.as_json(), "verdict.json")
            html = report.write(page, folder / report.REPORT_FILE)
            mlflow.log_artifact(str(html))
        if settings.html is not None:
            report.write(page, settings.html)
    drift = {
        "detected": verdict.detected,
        "drifted_features": drifted,
        "prediction_drift": bool(verdict.drifted("prediction")),
        "target_drift": bool(verdict.drifted("target")),
        "performance_drift": bool(verdict.drifted("performance")),
        "reason": verdict.reason,
    }
    return {
        "run_id": run.info.run_id,
        "status": "FINISHED",
        **verdict.as_json(),
        "reference": found.against,
        "performance": found.performance,
        "drift": drift,
    }

"""`myllama eval drift --predictor` on real churn data, a real trained champion and a real log."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.predictors.datasets import LABEL, load_split
from models.predictors.feedback import record_feedback
from models.predictors.prediction_log import PredictionLog, read_predictions
from models.predictors.registry import MODEL_FILE, load_skops
from models.predictors.train import REFERENCE_PREDICTIONS
from tests.eval.cli_helpers import eval_cli, eval_fails
from tests.helpers import ROOT


@dataclass(frozen=True)
class Champion:
    """A churn model trained into a temp MLflow store, and where things go."""

    store: str
    folder: Path
    version: str
    pipeline: Any


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Champion:
    """`myllama train churn` into a temp store (it logs the reference predictions)."""
    folder = tmp_path_factory.mktemp("drift")
    store = f"sqlite:///{folder}/mlflow.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "myllama",
            "train",
            "churn",
            "--tracking-uri",
            store,
            "--predictors-dir",
            str(folder / "predictors"),
        ],
        cwd=folder,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((folder / "predictors" / "churn" / "predictor.json").read_text())
    pipeline = load_skops(folder / "predictors" / "churn" / MODEL_FILE)
    return Champion(store, folder, str(card["version"]), pipeline)


def _log(champion: Champion, path: Path, rows: pd.DataFrame) -> Path:
    """Serve-like traffic: `rows` with the champion's own predicted labels, in a prediction log."""
    features = rows.drop(columns=LABEL, errors="ignore")
    labels = [str(v) for v in champion.pipeline.predict(features)]
    log = PredictionLog(path)
    records = json.loads(features.to_json(orient="records"))
    log.record(
        "churn", champion.version, records, [{"label": x, "probabilities": {}} for x in labels]
    )
    log.close()
    return path


def _drift(champion: Champion, log_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    args = ["drift", "--predictor", "churn", "--prediction-log", str(log_path)]
    return eval_cli([*args, "--tracking-uri", champion.store, *extra], cwd=champion.folder)


@pytest.fixture(scope="module")
def held_out() -> pd.DataFrame:
    """Churn rows the model never saw: fresh traffic from the training distribution."""
    return load_split("churn").test.sample(600, random_state=0).reset_index(drop=True)


def test_clean_traffic_is_no_drift_with_every_part_stated(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """Held-out rows with predicted labels: no_drift; every part with its numbers; HTML written."""
    html = tmp_path / "report.html"
    code, result, err = _drift(
        champion, _log(champion, tmp_path / "p.db", held_out), "--html", str(html)
    )
    assert code == 0, err[-3000:]
    assert result["verdict"] == "no_drift" and result["drift"]["detected"] is False, result[
        "reason"
    ]
    parts = {(p["part"], p["name"]): p for p in result["parts"]}
    assert ("prediction", "predicted label") in parts  # predicted vs predicted, never true labels
    assert {n for k, n in parts if k == "feature"} == set(held_out.columns) - {LABEL}
    for part in parts.values():
        assert {
            "statistic",
            "p_value",
            "p_adjusted",
            "threshold",
            "n_reference",
            "n_current",
        } <= set(part)
        assert part["n_current"] == 600 and part["threshold"] == 0.05
    assert parts[("feature", "tenure")]["method"] == "ks_exact"
    assert parts[("feature", "contract")]["method"] == "chi2_permutation"
    assert result["skipped"]["target"].startswith("no true labels")
    assert "Verdict: no_drift" in html.read_text()
    client = MlflowClient(champion.store)
    run = client.get_run(result["run_id"])
    assert run.data.tags["drift.verdict"] == "no_drift"
    files = {a.path for a in client.list_artifacts(result["run_id"])}
    assert {"drift_report.html", "verdict.json", "drift_table.csv"} <= files
    train_run = client.get_model_version("churn", champion.version).run_id
    assert REFERENCE_PREDICTIONS in {a.path for a in client.list_artifacts(train_run)}


def test_shorter_tenure_is_drift_and_names_tenure(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """tenure × 0.7: verdict drift, tenure among the drifted features, true labels give target."""
    shifted = held_out.assign(tenure=held_out["tenure"] * 0.7)
    labels = tmp_path / "truth.csv"
    held_out[[LABEL]].to_csv(labels, index=False)
    code, result, err = _drift(
        champion, _log(champion, tmp_path / "p.db", shifted), "--true-labels", str(labels)
    )
    assert code == 0, err[-3000:]
    assert result["verdict"] == "drift" and "tenure" in result["drift"]["drifted_features"]
    target = next(p for p in result["parts"] if p["part"] == "target")
    assert target["n_current"] == 600 and target["drifted"] is False
    metrics = MlflowClient(champion.store).get_run(result["run_id"]).data.metrics
    assert metrics["feature.tenure.drifted"] == 1.0


def test_few_rows_are_insufficient_data_and_errors_exit_nonzero(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """10 rows: insufficient_data (exit 0); a missing log is an error (1); bad flags exit 2."""
    log_path = _log(champion, tmp_path / "p.db", held_out.head(10))
    code, result, err = _drift(champion, log_path)
    assert code == 0, err[-3000:]
    assert result["verdict"] == "insufficient_data" and "at least 30" in result["reason"]
    code, err = eval_fails(
        [
            "drift",
            "--predictor",
            "churn",
            "--prediction-log",
            str(tmp_path / "none.db"),
            "--tracking-uri",
            champion.store,
        ],
        cwd=champion.folder,
    )
    assert code == 1 and "no prediction log" in err
    code, err = eval_fails(["drift", "--predictor", "tarot"], cwd=champion.folder)
    assert code == 2 and "unknown predictor" in err
    code, err = eval_fails(["drift"], cwd=champion.folder)
    assert code == 2 and "either --predictor NAME or --llm" in err


def _labelled_log(champion: Champion, path: Path, rows: pd.DataFrame, truth: list[str]) -> Path:
    """Serve-like traffic with the champion's labels and probabilities, then feedback `truth`."""
    features = rows.drop(columns=LABEL)
    proba = champion.pipeline.predict_proba(features)
    classes = [str(c) for c in champion.pipeline.classes_]
    outputs = [
        {
            "label": classes[int(p.argmax())],
            "probabilities": dict(zip(classes, p.tolist(), strict=True)),
        }
        for p in proba
    ]
    log = PredictionLog(path)
    ids = log.record(
        "churn", champion.version, json.loads(features.to_json(orient="records")), outputs
    )
    log.close()
    record_feedback(path, "churn", classes, list(zip(ids, truth, strict=True)))
    return path


def test_true_feedback_keeps_performance_quiet(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """True labels as feedback: performance no_drift, accuracy/Brier/AUC with intervals, in HTML."""
    html = tmp_path / "report.html"
    truth = [str(v) for v in held_out[LABEL]]
    code, result, err = _drift(
        champion, _labelled_log(champion, tmp_path / "p.db", held_out, truth), "--html", str(html)
    )
    assert code == 0, err[-3000:]
    performance = result["performance"]
    assert performance["verdict"] == "no_drift", result["reason"]
    assert result["drift"]["performance_drift"] is False
    parts = {p["name"]: p for p in result["parts"] if p["part"] == "performance"}
    assert set(parts) == {"accuracy", "brier"}
    assert parts["accuracy"]["n_current"] == 600 and parts["accuracy"]["threshold"] == 0.05
    live = performance["accuracy"]["live"]
    assert live["ci_low"] < live["value"] < live["ci_high"]
    for metric in ("accuracy", "brier", "roc_auc"):
        ref, cur = performance[metric]["reference"], performance[metric]["live"]
        assert (
            cur["ci_low"] <= ref["value"] <= cur["ci_high"]
            or ref["ci_low"] <= cur["value"] <= ref["ci_high"]
        )
    page = html.read_text()
    assert "Performance (concept drift): no_drift" in page and "roc_auc" in page


def test_wrong_feedback_is_performance_drift(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """Feedback that flips a third of the true labels: performance drift, named in the verdict."""
    classes = sorted({str(v) for v in held_out[LABEL]})
    truth = [
        next(c for c in classes if c != str(v)) if i % 3 == 0 else str(v)
        for i, v in enumerate(held_out[LABEL])
    ]
    code, result, err = _drift(
        champion, _labelled_log(champion, tmp_path / "p.db", held_out, truth)
    )
    assert code == 0, err[-3000:]
    assert result["verdict"] == "drift" and result["performance"]["verdict"] == "drift"
    assert result["drift"]["performance_drift"] is True
    accuracy = next(p for p in result["parts"] if p["name"] == "accuracy")
    assert accuracy["drifted"] and accuracy["statistic"] < 0
    assert "performance accuracy" in result["reason"]


def test_few_labels_leave_performance_insufficient(
    champion: Champion, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    """600 predictions but 10 labelled: the performance part is insufficient_data and skipped."""
    path = _log(champion, tmp_path / "p.db", held_out)
    ids = read_predictions(path, "churn")["id"].tolist()[:10]
    truth = [str(v) for v in held_out[LABEL].head(10)]
    record_feedback(
        path, "churn", sorted(set(held_out[LABEL].astype(str))), list(zip(ids, truth, strict=True))
    )
    code, result, err = _drift(champion, path)
    assert code == 0, err[-3000:]
    assert result["performance"]["verdict"] == "insufficient_data"
    assert "at least 30" in result["skipped"]["performance"]
    assert result["sample_sizes"]["current_labelled"] == 10

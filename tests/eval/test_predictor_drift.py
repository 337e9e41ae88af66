"""`myllama eval drift` on the real income data, a real prediction log and a temp MLflow store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from models.predictors.datasets import LABEL, load_split
from models.predictors.prediction_log import PredictionLog
from tests.eval.cli_helpers import eval_cli, eval_fails


def _log(path: Path, sample: pd.DataFrame) -> Path:
    """Write `sample` to a prediction log as the income predictor's traffic."""
    log = PredictionLog(path)
    features = sample.drop(columns=LABEL).to_dict(orient="records")
    outputs = [{"label": label, "probabilities": {}} for label in sample[LABEL]]
    log.record("income", "test-version", features, outputs)
    log.close()
    return path


@pytest.fixture(scope="module")
def fresh_sample() -> pd.DataFrame:
    """Held-out rows: a fresh sample of the training distribution."""
    return load_split("income").test.sample(3000, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A temp MLflow store shared by the module."""
    return f"sqlite:///{tmp_path_factory.mktemp('drift')}/mlflow.db"


def _drift(log_path: Path, store: str, *extra: str) -> tuple[int, dict, str]:
    """`eval drift` of the income predictor over this log."""
    args = ["drift", "--predictor", "income", "--prediction-log", str(log_path)]
    return eval_cli([*args, "--tracking-uri", store, *extra])


def test_fresh_sample_is_not_drift(tmp_path: Path, fresh_sample: pd.DataFrame, store: str) -> None:
    """Held-out income rows as traffic: no data-set drift, age not flagged."""
    code, result, err = _drift(_log(tmp_path / "p.db", fresh_sample), store)
    assert code == 0, err[-3000:]
    drift = result["drift"]
    assert drift["detected"] is False and "age" not in drift["drifted_features"]
    assert drift["share_drifted_features"] < 0.5 and drift["label_drift"] is False
    assert result["metrics"]["current_rows"] == 3000
    assert result["metrics"]["reference_rows"] == len(load_split("income").train)
    methods = {c["column"]: c["method"] for c in drift["columns"]}
    assert methods["age"] == "wasserstein_over_std" and methods["sex"] == "jensen_shannon"


def test_age_plus_fifteen_is_flagged_in_mlflow(
    tmp_path: Path, fresh_sample: pd.DataFrame, store: str
) -> None:
    """age + 15 years: age flagged, with its table and plots in MLflow."""
    older = fresh_sample.assign(age=fresh_sample["age"] + 15)
    code, result, err = _drift(_log(tmp_path / "p.db", older), store)
    assert code == 0, err[-3000:]
    assert "age" in result["drift"]["drifted_features"]
    assert result["drift"]["detected"] is False  # one feature of thirteen: not the data set
    client = MlflowClient(store)
    run = client.get_run(result["run_id"])
    assert run.data.metrics["age.drifted"] == 1.0
    assert run.data.metrics["age.wasserstein_over_std"] > 1.0
    assert run.data.metrics["sex.drifted"] == 0.0
    assert "age" in run.data.tags["drifted_features"].split(",")
    assert run.data.tags["predictor"] == "income" and run.data.params["psi"] == "False"
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"drift_table.csv", "drift_table.json", "distributions"} <= files
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "distributions")}
    assert {"distributions/age.png", "distributions/label.png"} <= plots
    table = pd.read_csv(client.download_artifacts(run.info.run_id, "drift_table.csv"))
    age = table.set_index("column").loc["age"]
    assert bool(age["drifted"]) and age["method"] == "wasserstein_over_std"


def test_psi_and_since_and_an_empty_log(
    tmp_path: Path, fresh_sample: pd.DataFrame, store: str
) -> None:
    """--psi uses PSI everywhere; an empty --since window and a bad predictor exit 2."""
    log_path = _log(tmp_path / "p.db", fresh_sample.head(500).assign(age=lambda f: f["age"] + 15))
    code, result, err = _drift(log_path, store, "--psi")
    assert code == 0, err[-3000:]
    assert {c["method"] for c in result["drift"]["columns"]} == {"psi"}
    assert "age" in result["drift"]["drifted_features"]
    args = ["drift", "--predictor", "income", "--prediction-log", str(log_path)]
    code, err = eval_fails([*args, "--since", "2999-01-01", "--tracking-uri", store])
    assert code == 2 and "no income predictions since 2999-01-01" in err
    code, err = eval_fails(["drift", "--predictor", "tarot", "--tracking-uri", store])
    assert code == 2 and "unknown predictor" in err

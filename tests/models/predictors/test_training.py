"""`myllama train all`: held-out targets met, everything logged to MLflow, champions registered."""

from __future__ import annotations

import json

import mlflow
from mlflow import MlflowClient
from mlflow.models import get_model_info

from models.predictors.registry import PREDICTOR_NAMES
from tests.models.predictors.conftest import Trained


def test_held_out_targets(trained: Trained) -> None:
    """Iris accuracy ≥ 0.93, income ROC-AUC ≥ 0.90, churn ROC-AUC ≥ 0.84."""
    assert trained.results["iris"]["accuracy"] >= 0.93
    assert trained.results["income"]["roc_auc"] >= 0.90
    assert trained.results["churn"]["roc_auc"] >= 0.84


def test_champions_are_registered_with_their_run(trained: Trained) -> None:
    """Each model has the alias; its run has params, metrics, both data sets and a signature."""
    mlflow.set_tracking_uri(trained.tracking_uri)
    client = MlflowClient(tracking_uri=trained.tracking_uri)
    for name in PREDICTOR_NAMES:
        champion = client.get_model_version_by_alias(name, "champion")
        assert str(champion.version) == trained.results[name]["version"]
        run = client.get_run(champion.run_id)
        assert run.data.params["predictor"] == name
        assert int(run.data.params["n_train"]) > 0
        for metric in ("accuracy", "f1", "roc_auc"):
            assert run.data.metrics[metric] == trained.results[name][metric]
        contexts = {
            tag.value
            for ds in run.inputs.dataset_inputs
            for tag in ds.tags
            if tag.key == "mlflow.data.context"
        }
        assert contexts == {"training", "evaluation"}
        info = get_model_info(f"models:/{name}@champion")
        assert info.signature is not None and info.saved_input_example_info is not None
        card = json.loads((trained.predictors_dir / name / "predictor.json").read_text())
        assert info.signature.inputs.input_names() == card["input_schema"]["required"]


def test_artefacts_saved_for_the_fallback(trained: Trained) -> None:
    """The pipeline and its card sit in the predictors dir, with the registered version."""
    for name in PREDICTOR_NAMES:
        card = json.loads((trained.predictors_dir / name / "predictor.json").read_text())
        assert card["version"] == trained.results[name]["version"]
        assert card["metrics"]["roc_auc"] == trained.results[name]["roc_auc"]
        assert (trained.predictors_dir / name / "model.skops").stat().st_size > 0

"""The predictor registry: the 404 messages, and a broken champion falling back to its artefact."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from models.errors import ModelNotFound
from models.predictors.registry import ALIAS, PredictorRegistry
from tests.predictors.conftest import Trained


def test_disabled_and_unknown_predictors_say_why() -> None:
    """--no-load-predictors and unknown names both raise ModelNotFound with a useful message."""
    registry = PredictorRegistry.disabled()
    assert registry.cards() == []
    with pytest.raises(ModelNotFound, match="--no-load-predictors"):
        registry.get("iris")
    with pytest.raises(ModelNotFound, match="iris, income, churn"):
        registry.get("titanic")
    with pytest.raises(ModelNotFound, match="myllama train income"):
        PredictorRegistry({}).get("income")


def test_a_broken_champion_falls_back_to_its_artefact(
    trained: Trained, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """iris's champion points at missing files: iris from its artefact, the rest from MLflow."""
    store = tmp_path / "mlflow.db"
    shutil.copy(trained.tracking_uri.removeprefix("sqlite:///"), store)
    uri = f"sqlite:///{store}"
    client = MlflowClient(tracking_uri=uri)
    champion = client.get_model_version_by_alias("iris", ALIAS)
    broken = client.create_model_version("iris", str(tmp_path / "missing"), run_id=champion.run_id)
    client.set_registered_model_alias("iris", ALIAS, broken.version)
    with caplog.at_level(logging.INFO, logger="models.predictors.registry"):
        registry = PredictorRegistry.load(uri, trained.predictors_dir)
    sources = {c["name"]: (c["source"], c["version"]) for c in registry.cards()}
    assert sources["iris"][0] == "artefact"
    for name in ("income", "churn"):
        assert sources[name] == ("mlflow", trained.results[name]["version"])
    assert any(
        "could not load iris@champion" in r.getMessage() and r.exc_info for r in caplog.records
    )

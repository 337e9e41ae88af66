"""The predictor registry: 404 messages, fallbacks, no unpickling, per-predictor states."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from models.errors import ModelNotFound
from models.predictors.registry import (
    ALIAS,
    CARD_FILE,
    MODEL_FILE,
    PREDICTOR_NAMES,
    PredictorRegistry,
    PredictorState,
    predictor_states,
)
from tests.helpers import ROOT
from tests.models.predictors.conftest import Trained


class _Payload:
    """An object whose unpickling creates a folder: the proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def _store_copy(trained: Trained, tmp_path: Path) -> str:
    """A copy of the trained MLflow store, with an experiment whose artefacts stay in tmp_path."""
    store = tmp_path / "mlflow.db"
    shutil.copy(trained.tracking_uri.removeprefix("sqlite:///"), store)
    uri = f"sqlite:///{store}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=mlflow.create_experiment("crafted", str(tmp_path / "art")))
    return uri


def _crown(trained: Trained, model: Any, **log_model: Any) -> None:
    """Log `model` (with iris's real card) as a new version of iris and make it the champion."""
    card = json.loads((trained.predictors_dir / "iris" / CARD_FILE).read_text())
    with mlflow.start_run():
        mlflow.log_dict(card, CARD_FILE)
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name="iris", **log_model
        )
    MlflowClient().set_registered_model_alias("iris", ALIAS, info.registered_model_version)


def _state(registry: PredictorRegistry, name: str) -> PredictorState:
    """One predictor's state."""
    return {s.name: s for s in registry.states()}[name]


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
    iris = _state(registry, "iris")
    assert iris.status == "ready" and iris.ready and iris.source == "artefact"
    assert "could not be loaded" in iris.message


def test_a_pickled_champion_is_never_unpickled(trained: Trained, tmp_path: Path) -> None:
    """A champion stored as cloudpickle that runs code when unpickled: refused, never run."""
    uri = _store_copy(trained, tmp_path)
    marker = tmp_path / "unpickled"
    _crown(trained, _Payload(marker), serialization_format="cloudpickle")
    shutil.rmtree(marker, ignore_errors=True)  # MLflow itself unpickles it while logging
    registry = PredictorRegistry.load(uri, trained.predictors_dir)
    assert not marker.exists()
    iris = _state(registry, "iris")
    assert iris.source == "artefact" and "stored as cloudpickle, not skops" in iris.message
    assert _state(registry, "income").source == "mlflow"


def test_a_skops_champion_with_an_untrusted_type_is_refused(
    trained: Trained, tmp_path: Path
) -> None:
    """The model lists os.mkdir among its own trusted types; the server's allow-list wins."""
    uri = _store_copy(trained, tmp_path)
    crafted = Pipeline([("f", FunctionTransformer(func=os.mkdir)), ("m", LogisticRegression())])
    _crown(trained, crafted, serialization_format="skops", skops_trusted_types=["posix.mkdir"])
    iris = _state(PredictorRegistry.load(uri, trained.predictors_dir), "iris")
    assert iris.source == "artefact"
    assert "outside the allow-list: posix.mkdir" in iris.message


def test_states_before_during_and_after_loading(tmp_path: Path) -> None:
    """loading → each predictor's state; a failed load; --no-load-predictors; nothing trained."""
    assert {s.status for s in predictor_states(None)} == {"loading"}
    assert not any(s.ready for s in predictor_states(None))
    failed = predictor_states(None, "disk on fire")
    assert [(s.status, s.message, s.ready) for s in failed] == [
        ("failed", "disk on fire", False)
    ] * 3
    disabled = predictor_states(PredictorRegistry.disabled())
    assert {s.status for s in disabled} == {"disabled"} and all(s.ready for s in disabled)
    untrained = PredictorRegistry.load(f"sqlite:///{tmp_path}/none.db", tmp_path / "none")
    states = predictor_states(untrained)
    assert [s.name for s in states] == list(PREDICTOR_NAMES)
    assert {s.status for s in states} == {"not_trained"} and all(s.ready for s in states)
    assert states[0].as_dict()["message"] == "run `myllama train iris`"


def test_a_broken_artefact_is_failed_not_ready(trained: Trained, tmp_path: Path) -> None:
    """No MLflow, and churn's file is corrupt: churn failed (not ready), the others ready."""
    folder = tmp_path / "predictors"
    shutil.copytree(trained.predictors_dir, folder)
    (folder / "churn" / "model.skops").write_bytes(b"not a zip")
    states = {
        s.name: s for s in PredictorRegistry.load(f"sqlite:///{tmp_path}/x.db", folder).states()
    }
    assert states["churn"].status == "failed" and not states["churn"].ready
    assert "artefact failed" in states["churn"].message
    assert states["iris"].status == states["income"].status == "ready"


def test_loading_a_pipeline_keeps_torch_out_of_the_process(trained: Trained) -> None:
    """skops' import would drag torch in (~180 MB of RSS): loading a pipeline leaves it out, and
    torch still imports afterwards for whoever needs it (embeddings, drift)."""
    model_file = trained.predictors_dir / "iris" / MODEL_FILE
    code = (
        "import sys; from pathlib import Path; "
        "from models.predictors.registry import load_skops; "
        f"pipeline = load_skops(Path({str(model_file)!r})); "
        "print(type(pipeline).__name__, 'torch' in sys.modules); "
        "import torch; print(torch.tensor([1.0]).dtype)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Pipeline", "False", "torch.float32"]


def test_champions_load_from_mlflow_without_mlflow_in_the_process(
    trained: Trained, tmp_path: Path
) -> None:
    """A child process fetches the champions; the server process never imports MLflow (~85 MB)."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from models.predictors.registry import PredictorRegistry; "
        f"registry = PredictorRegistry.load({trained.tracking_uri!r}, Path({str(tmp_path)!r})); "
        "cards = {c['name']: [c['source'], c['version']] for c in registry.cards()}; "
        "print(json.dumps([cards, 'mlflow' in sys.modules, 'sqlalchemy' in sys.modules]))"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cards, mlflow_imported, sqlalchemy_imported = json.loads(done.stdout.splitlines()[-1])
    assert cards == {n: ["mlflow", trained.results[n]["version"]] for n in PREDICTOR_NAMES}
    assert not mlflow_imported and not sqlalchemy_imported
    assert not list(scratch.iterdir())  # the fetched copies are gone

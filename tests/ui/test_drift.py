"""The Drift tab's reading of MLflow when there is nothing to show: readable, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from ui.drift import embed, recent_runs
from ui.drift_tab import DriftTab
from ui.errors import UserFacingError


def test_a_missing_store_is_named_and_not_created(tmp_path: Path) -> None:
    """A SQLite store that does not exist: the message names it; no empty store appears."""
    store = tmp_path / "absent.db"
    with pytest.raises(UserFacingError, match="No MLflow store at sqlite:///"):
        recent_runs(f"sqlite:///{store}", "myllama-drift")
    assert not store.exists()


def test_a_store_without_drift_runs_says_how_to_make_one(tmp_path: Path) -> None:
    """An existing store without the experiment: the tab says to run `myllama eval drift`."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    MlflowClient(uri).search_experiments()  # creates the store's tables
    table, picker, status = DriftTab(uri, "myllama-drift").runs()
    assert table is None and picker.choices == []
    assert "Run `myllama eval drift --predictor iris`" in status
    assert embed(None) == ""

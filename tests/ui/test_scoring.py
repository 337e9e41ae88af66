"""Scoring a CSV: the file read by the schema, rows posted in batches, bad rows named, not fatal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from tests.conftest import API_KEY
from tests.ui.conftest import Stack
from ui import scoring
from ui.client import ServerClient
from ui.errors import UserFacingError

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> pd.DataFrame:
    """The 150 iris rows with the predictor's feature names and the true species."""
    data = load_iris(as_frame=True)
    frame = data.data.set_axis(IRIS, axis=1)
    frame["species"] = [data.target_names[i] for i in data.target]
    return frame


def iris_spec(server_url: str) -> dict[str, Any]:
    """The iris predictor as the server describes it."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    found = httpx.get(f"{server_url}/v1/predictors", headers=headers, timeout=10).json()["data"]
    return next(s for s in found if s["name"] == "iris")


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    """A header without petal_width: the message names it and lists what is needed."""
    path = tmp_path / "short.csv"
    iris_frame().drop(columns="petal_width").to_csv(path, index=False)
    properties = {name: {"type": "number"} for name in IRIS}
    with pytest.raises(UserFacingError, match="lacks the column\\(s\\) petal_width"):
        scoring.read_csv(path, properties)


def test_a_stray_word_in_a_number_column_is_sent_as_text(tmp_path: Path) -> None:
    """One word in a number column: the numbers stay numbers, the word is sent for the server
    to name, an empty cell is null."""
    path = tmp_path / "stray.csv"
    path.write_text("sepal_length,kind\n5.1,a\nabc,b\n,c\n")
    properties: dict[str, dict[str, Any]] = {
        "sepal_length": {"type": "number"},
        "kind": {"type": "string", "enum": ["a"]},
    }
    records = scoring.to_records(scoring.read_csv(path, properties), properties)
    assert records == [
        {"sepal_length": 5.1, "kind": "a"},
        {"sepal_length": "abc", "kind": "b"},
        {"sepal_length": None, "kind": "c"},
    ]


def test_scoring_names_bad_rows_and_scores_the_rest(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """150 real iris rows in batches of 64, two of them bad: 148 scored, the two named."""
    monkeypatch.setattr(scoring, "BATCH_ROWS", 64)  # three batches
    spec = iris_spec(stack.server_url)
    frame = iris_frame().astype({"sepal_width": object})
    frame.loc[2, "sepal_width"] = "wide"  # row 3
    frame.loc[100, "petal_length"] = -50.0  # row 101, in the second batch
    path = tmp_path / "iris.csv"
    frame.to_csv(path, index=False)
    properties = spec["input_schema"]["properties"]
    read = scoring.read_csv(path, properties)
    client = ServerClient(stack.server_url, API_KEY, timeout=60)
    done = asyncio.run(scoring.score(client, "iris", read, properties, spec["classes"]))
    assert done.scored == 148 and done.unscored == 0
    assert sorted(done.bad) == [3, 101]
    assert done.bad[3].startswith("sepal_width: expected a number, got 'wide'")
    assert done.bad[101].startswith("petal_length: -50.0 is outside the allowed range")
    out = done.frame
    assert list(out.columns[:5]) == [*IRIS, "species"]  # the file's own columns are kept
    good = out[out["error"] == ""]
    assert (good["prediction"] == good["species"]).mean() > 0.9
    assert good[[f"p_{c}" for c in spec["classes"]]].sum(axis=1).round(6).eq(1).all()
    assert pd.isna(out.loc[2, "prediction"]) and out.loc[2, "error"] == done.bad[3]
    summary = done.summary()
    assert summary.startswith("Scored 148 of 150 row(s). 2 row(s) refused")
    assert "row 3 (line 4): sepal_width" in summary

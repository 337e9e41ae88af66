"""Prediction ids and POST /v1/predict/{name}/feedback on the real server with a real log."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from models.predictors.datasets import LABEL, feature_records, load_split
from models.predictors.feedback import read_labelled
from models.predictors.prediction_log import PredictionLog, read_predictions
from tests.conftest import Server
from tests.models.predictors.conftest import (
    Trained,
    error_of,
    predict,
    serving,
    wait_for_predictors,
)


def feedback(server: Server, name: str, items: Any) -> httpx.Response:
    """POST /v1/predict/{name}/feedback with these items."""
    return httpx.post(
        f"{server.v1}/predict/{name}/feedback",
        json={"feedback": items},
        headers=server.headers(),
        timeout=60,
    )


def _logged_ids(path: Path, name: str, ids: list[str], timeout: float = 30.0) -> list[str]:
    """Wait until these ids are committed to the log (the writer flushes about every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = [i for i in read_predictions(path, name)["id"] if i in set(ids)]
        if len(logged) == len(ids):
            return logged
        time.sleep(0.1)
    raise TimeoutError(f"{len(ids)} ids not in {path} in time")


def test_ids_are_served_logged_and_take_feedback_once(trained: Trained, tmp_path: Path) -> None:
    """One id per record in the answer and the log; feedback stored, repeats 200, changes 409."""
    log_file = tmp_path / "predictions.db"
    test = load_split("iris").test.head(6)
    with serving(trained.tracking_uri, trained.predictors_dir, log_file) as server:
        wait_for_predictors(server)
        answer = predict(server, "iris", feature_records(test))
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        ids = [p["id"] for p in predictions]
        assert len(set(ids)) == len(test) and all(isinstance(i, str) and i for i in ids)
        assert _logged_ids(log_file, "iris", ids) == ids  # in the order served
        truth = [str(v) for v in test[LABEL]]
        items = [{"id": i, "label": t} for i, t in zip(ids, truth, strict=True)]
        first = feedback(server, "iris", items)
        assert first.status_code == 200, first.text
        assert first.json()["stored"] == len(ids) and first.json()["unchanged"] == 0
        again = feedback(server, "iris", items)
        assert again.status_code == 200 and again.json() == {
            **first.json(),
            "stored": 0,
            "unchanged": len(ids),
        }
        other = next(c for c in ("setosa", "versicolor", "virginica") if c != truth[0])
        conflict = error_of(feedback(server, "iris", [{"id": ids[0], "label": other}]), 409)
        assert conflict["code"] == "label_conflict" and ids[0] in conflict["message"]
        labelled = read_labelled(log_file, "iris")
        assert labelled["id"].tolist() == ids and labelled["truth"].tolist() == truth
        assert labelled["label"].tolist() == [p["label"] for p in predictions]


def test_bad_feedback_answers_4xx_and_stores_nothing(trained: Trained, tmp_path: Path) -> None:
    """Unknown ids 404 listing them, a label not in the classes 400 naming the field, bounds."""
    log_file = tmp_path / "predictions.db"
    with serving(trained.tracking_uri, trained.predictors_dir, log_file) as server:
        wait_for_predictors(server)
        rows = feature_records(load_split("income").test.head(2))
        ids = [p["id"] for p in predict(server, "income", rows).json()["predictions"]]
        iris_id = predict(server, "iris", feature_records(load_split("iris").test.head(1)))
        _logged_ids(log_file, "income", ids)
        unknown = error_of(
            feedback(
                server, "income", [{"id": ids[0], "label": ">50K"}, {"id": "nope", "label": ">50K"}]
            ),
            404,
        )
        assert unknown["code"] == "prediction_not_found" and "nope" in unknown["message"]
        assert ids[0] not in unknown["message"]
        other_model = iris_id.json()["predictions"][0]["id"]
        _logged_ids(log_file, "iris", [other_model])
        assert (
            error_of(feedback(server, "income", [{"id": other_model, "label": ">50K"}]), 404)[
                "param"
            ]
            == "feedback"
        )
        bad = error_of(
            feedback(
                server,
                "income",
                [{"id": ids[0], "label": "<=50K"}, {"id": ids[1], "label": "rich"}],
            ),
            400,
        )
        assert bad["param"] == "feedback[1].label" and "rich" in bad["message"]
        assert error_of(feedback(server, "income", []), 400)["type"] == "invalid_request_error"
        too_many = [{"id": ids[0], "label": ">50K"}] * 1001
        assert error_of(feedback(server, "income", too_many), 400)
        missing = httpx.post(
            f"{server.v1}/predict/income/feedback", json={"labels": []}, headers=server.headers()
        )
        assert error_of(missing, 400)["param"]
        assert error_of(feedback(server, "nosuch", [{"id": ids[0], "label": "x"}]), 404)
    assert read_labelled(log_file, "income").empty


def test_a_log_from_before_the_ids_is_read_and_extended(tmp_path: Path) -> None:
    """An old predictions table without the id column: read with no id, new rows get ids."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE predictions (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, predictor TEXT "
            "NOT NULL, version TEXT NOT NULL, label TEXT NOT NULL, probabilities TEXT NOT NULL, "
            "inputs TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO predictions (ts, predictor, version, label, probabilities, inputs) "
            "VALUES ('2026-01-01T00:00:00.000000+00:00', 'iris', '1', 'setosa', '{}', '{\"x\": 1}')"
        )
    db.close()
    old = read_predictions(path, "iris")
    assert old["id"].isna().all() and old["x"].tolist() == [1]
    log = PredictionLog(path)
    ids = log.record("iris", "2", [{"x": 2}], [{"label": "setosa", "probabilities": {}}])
    log.close()
    both = read_predictions(path, "iris")
    assert both["id"].isna().tolist() == [True, False] and both["id"].iloc[1:].tolist() == ids

"""The predictors over HTTP on a real server: list, predict, the error envelope, the log."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest

from models.predictors.datasets import LABEL, feature_records, load_split
from models.predictors.prediction_log import read_predictions
from models.predictors.registry import PREDICTOR_NAMES, PredictorRegistry
from tests.conftest import Server
from tests.models.predictors.conftest import (
    Trained,
    error_of,
    predict,
    serving,
    wait_for_predictors,
)


def test_list_describes_every_champion(predictor_server: Server, trained: Trained) -> None:
    """Names, MLflow versions, JSON Schemas with an enum for each category, classes, metrics."""
    cards = {c["name"]: c for c in wait_for_predictors(predictor_server)}
    assert set(cards) == set(PREDICTOR_NAMES)
    for name, card in cards.items():
        assert card["source"] == "mlflow"
        assert card["version"] == trained.results[name]["version"]
        assert card["metrics"]["roc_auc"] == trained.results[name]["roc_auc"]
        schema = card["input_schema"]
        assert schema["type"] == "object" and schema["required"] == list(schema["properties"])
        for spec in schema["properties"].values():
            assert spec["type"] in ("number", "integer", "string")
            assert "enum" in spec if spec["type"] == "string" else "minimum" in spec
    assert cards["iris"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert cards["income"]["classes"] == ["<=50K", ">50K"]
    assert "workclass" in cards["income"]["input_schema"]["properties"]


@pytest.mark.parametrize("name", PREDICTOR_NAMES)
def test_served_predictions_match_the_held_out_metrics(
    predictor_server: Server, trained: Trained, name: str
) -> None:
    """Held-out rows (missing values sent as null) over HTTP: the logged accuracy."""
    test = load_split(name).test.head(5_000)
    response = predict(predictor_server, name, feature_records(test, keep_missing=True))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == name and body["version"] == trained.results[name]["version"]
    predictions = body["predictions"]
    assert len(predictions) == len(test)
    for p in predictions[:50]:
        assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)
    accuracy = (pd.Series([p["label"] for p in predictions]) == test[LABEL].values).mean()
    if len(test) == len(load_split(name).test):  # the whole held-out set: the logged figure
        assert accuracy == pytest.approx(trained.results[name]["accuracy"])
    else:
        assert accuracy == pytest.approx(trained.results[name]["accuracy"], abs=0.02)


def test_unknown_values_are_imputed_as_in_training(
    predictor_server: Server, trained: Trained
) -> None:
    """Adult rows with unknown workclass/occupation/native_country: null, scored as in training."""
    cards = {c["name"]: c for c in wait_for_predictors(predictor_server)}
    nullable = {
        name: {f for f, spec in card["input_schema"]["properties"].items() if spec.get("nullable")}
        for name, card in cards.items()
    }
    assert nullable == {
        "iris": set(),
        "income": {"workclass", "occupation", "native_country"},
        "churn": {"total_charges"},
    }
    test = load_split("income").test
    unknown = test[test[["workclass", "occupation", "native_country"]].isna().any(axis=1)]
    response = predict(predictor_server, "income", feature_records(unknown, keep_missing=True))
    assert response.status_code == 200, response.text
    served = [p["probabilities"][">50K"] for p in response.json()["predictions"]]
    pipeline = PredictorRegistry.load(trained.tracking_uri, trained.predictors_dir).get("income")
    expected = pipeline.pipeline.predict_proba(unknown.drop(columns=LABEL))[:, 1]
    assert len(served) == len(unknown) > 100
    assert served == pytest.approx(expected.tolist())
    good = feature_records(test.dropna().head(1))[0]
    error = error_of(predict(predictor_server, "income", [{**good, "age": None}]), 400)
    assert error["param"] == "inputs[0].age" and "null is not allowed" in error["message"]


def test_bad_inputs_answer_422_naming_the_field(predictor_server: Server) -> None:
    """Wrong category (allowed values shown), type, range; unknown, missing, empty inputs."""
    good = feature_records(load_split("income").test.head(1))[0]
    error = error_of(
        predict(predictor_server, "income", [good, {**good, "workclass": "Pirate"}]), 400
    )
    assert error["param"] == "inputs[1].workclass" and error["code"] == "invalid_value"
    assert "Pirate" in error["message"] and "'Private'" in error["message"]
    error = error_of(predict(predictor_server, "income", [{**good, "age": "old"}]), 400)
    assert error["param"] == "inputs[0].age"
    error = error_of(predict(predictor_server, "income", [{**good, "hours_per_week": 1000}]), 400)
    assert error["param"] == "inputs[0].hours_per_week" and "range" in error["message"]
    error = error_of(predict(predictor_server, "income", [{**good, "fnlwgt": 1}]), 400)
    assert error["param"] == "inputs[0].fnlwgt" and "unknown" in error["message"]
    missing = {k: v for k, v in good.items() if k != "sex"}
    assert error_of(predict(predictor_server, "income", [missing]), 400)["param"] == "inputs[0].sex"
    assert error_of(predict(predictor_server, "iris", []), 400)["param"] == "inputs"
    assert error_of(predict(predictor_server, "iris", ["x"]), 400)["param"] == "inputs[0]"
    no_inputs = httpx.post(
        f"{predictor_server.v1}/predict/iris", json={}, headers=predictor_server.headers()
    )
    assert error_of(no_inputs, 400)["param"] == "inputs"


def test_unknown_predictor_and_auth(predictor_server: Server) -> None:
    """404 model_not_found for an unknown name; 401 without the key."""
    error = error_of(predict(predictor_server, "titanic", [{}]), 404)
    assert error["code"] == "model_not_found" and "iris" in error["message"]
    anonymous = httpx.get(f"{predictor_server.v1}/predictors")
    assert anonymous.status_code == 401


def test_untrained_server_lists_nothing_and_says_to_train(server: Server) -> None:
    """The shared server has an empty MLflow store: an empty list, and 404 telling to train."""
    assert wait_for_predictors(server) == []
    error = error_of(predict(server, "churn", [{"tenure": 1}]), 404)
    assert error["code"] == "model_not_found" and "myllama train churn" in error["message"]


def test_artefact_fallback_and_nothing_lost_on_shutdown(trained: Trained, tmp_path: Path) -> None:
    """No MLflow store: the artefacts are served; every prediction is in the log after a stop."""
    log_file = tmp_path / "predictions.db"
    iris = feature_records(load_split("iris").test)
    with serving(f"sqlite:///{tmp_path}/absent.db", trained.predictors_dir, log_file) as server:
        cards = wait_for_predictors(server)
        assert {c["source"] for c in cards} == {"artefact"} and len(cards) == 3
        for record in iris:
            assert predict(server, "iris", [record]).status_code == 200
        assert predict(server, "iris", iris).status_code == 200
        churn = feature_records(load_split("churn").test.head(5))
        assert predict(server, "churn", churn).status_code == 200
    logged = read_predictions(log_file, "iris")
    assert len(logged) == 2 * len(iris)
    assert set(logged["version"]) == {trained.results["iris"]["version"]}
    assert list(logged.columns[4:]) == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert logged["sepal_length"].tolist() == [r["sepal_length"] for r in iris] * 2
    assert len(read_predictions(log_file, "churn")) == 5

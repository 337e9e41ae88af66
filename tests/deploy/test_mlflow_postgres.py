"""MLflow on a real PostgreSQL: train → register → serve → eval, all recorded in one database."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from models.predictors.datasets import feature_records, load_split
from tests.deploy.postgres import Postgres, running_postgres
from tests.eval.cli_helpers import eval_cli
from tests.models.predictors.conftest import predict, serving, wait_for_predictors

pytestmark = pytest.mark.postgres
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster for this module."""
    with running_postgres() as cluster:
        yield cluster


def _train_iris(uri: str, work: Path) -> dict[str, Any]:
    """`myllama train iris` into the store at `uri`; its JSON line."""
    done = subprocess.run(
        [sys.executable, "-m", "myllama", "train", "iris", "--tracking-uri", uri,
         "--predictors-dir", str(work / "predictors")],
        cwd=work,  # a database store puts run artefacts in ./mlruns: keep them in the temp folder
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_train_register_serve_eval_on_postgres(postgres: Postgres, tmp_path: Path) -> None:
    """The champion registered in PostgreSQL is what the server loads and predicts with, and an
    eval run against that server lands in the same database."""
    started = time.monotonic()
    trained = _train_iris(postgres.uri, tmp_path)
    log.info("train iris into PostgreSQL: %.1f s", time.monotonic() - started)
    version = str(trained["predictors"]["iris"]["version"])
    client = MlflowClient(tracking_uri=postgres.uri)
    champion = client.get_model_version_by_alias("iris", "champion")
    assert str(champion.version) == version

    # No artefact folder to fall back on: the server can only get iris from MLflow.
    empty = tmp_path / "no-artefacts"
    with serving(postgres.uri, empty, tmp_path / "predictions.db") as server:
        cards = {c["name"]: c for c in wait_for_predictors(server)}
        log.info("serve: predictors loaded %.1f s after train", time.monotonic() - started)
        assert cards["iris"]["source"] == "mlflow"
        assert str(cards["iris"]["version"]) == version
        rows = load_split("iris").test.head(3)
        response = predict(server, "iris", feature_records(rows))
        assert response.status_code == 200, response.text
        body = response.json()
        assert str(body["version"]) == version and len(body["predictions"]) == 3
        assert {p["label"] for p in body["predictions"]} <= {"setosa", "versicolor", "virginica"}

        started = time.monotonic()
        code, evaluated, err = eval_cli(
            ["run", "--prompts", "smoke", "--limit", "2", "--max-tokens", "8",
             "--concurrency", "1", "--permutations", "99", "--server-url", server.url,
             "--api-key", str(server.api_key), "--tracking-uri", postgres.uri],
            cwd=tmp_path,
        )  # fmt: skip
    assert code == 0, err[-3000:]
    log.info("eval run recorded in PostgreSQL: %.1f s", time.monotonic() - started)

    run = client.get_run(evaluated["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "myllama-eval"
    assert champion.run_id is not None
    train_run = client.get_run(champion.run_id)
    assert train_run.info.status == "FINISHED" and "accuracy" in train_run.data.metrics

    for experiment in client.search_experiments():  # artefacts beside the test, not in the repo
        if experiment.name != "Default":
            assert Path(experiment.artifact_location.removeprefix("file://")).is_relative_to(
                tmp_path
            ), experiment.artifact_location

    # And it is PostgreSQL that holds them, read with its own client.
    with postgres.connect() as connection:
        models = connection.execute("SELECT name FROM registered_models").fetchall()
        aliases = connection.execute(
            "SELECT name, alias, version FROM registered_model_aliases"
        ).fetchall()
        runs = {
            row[0]
            for row in connection.execute("SELECT run_uuid FROM runs WHERE status = 'FINISHED'")
        }
    assert ("iris",) in models
    assert ("iris", "champion", int(version)) in aliases
    assert {champion.run_id, evaluated["run_id"]} <= runs

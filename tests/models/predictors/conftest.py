"""Predictor fixtures: one real training run into a temp MLflow store, real servers serving it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, Server
from tests.helpers import free_port, running_myllama


@dataclass(frozen=True)
class Trained:
    """Where `myllama train all` wrote, and what it printed."""

    tracking_uri: str
    predictors_dir: Path
    results: dict[str, Any]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """`myllama train all` on the real data into a temp MLflow store (the slow part, once)."""
    work = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{work}/mlflow.db"
    flags = ["--tracking-uri", uri, "--predictors-dir", str(work / "predictors")]
    done = subprocess.run(
        [sys.executable, "-m", "myllama", "train", "all", *flags],
        cwd=work,  # MLflow puts the run artefacts in ./mlruns: keep them in the temp folder
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print("held-out metrics:", json.dumps(results["predictors"], indent=1))
    return Trained(uri, work / "predictors", results["predictors"])


def wait_for_predictors(server: Server, timeout: float = 120.0) -> list[dict[str, Any]]:
    """Poll GET /v1/predictors until the predictors are loaded (it answers 503 while loading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.v1}/predictors", headers=server.headers(), timeout=10)
        if response.status_code == 200:
            data: list[dict[str, Any]] = response.json()["data"]
            return data
        assert response.status_code == 503, response.text
        time.sleep(0.2)
    raise TimeoutError("predictors not loaded in time")


def predict(server: Server, name: str, inputs: Any) -> httpx.Response:
    """POST /v1/predict/{name} with these inputs."""
    return httpx.post(
        f"{server.v1}/predict/{name}", json={"inputs": inputs}, headers=server.headers(), timeout=60
    )


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error envelope of a response with this status."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@contextmanager
def serving(tracking_uri: str, predictors_dir: Path, prediction_log: Path) -> Iterator[Server]:
    """A real `myllama serve` on a free port with these predictor paths; stopped cleanly after."""
    port = free_port()
    args = ["serve", "--port", str(port), "--api-key", API_KEY, "--parallel", "1"]
    args += ["--tracking-uri", tracking_uri, "--predictors-dir", str(predictors_dir)]
    args += ["--prediction-log", str(prediction_log)]
    url = f"http://127.0.0.1:{port}"
    with running_myllama(args, f"{url}/health", log_name="predictors-server"):
        yield Server(url=url, api_key=API_KEY)


@pytest.fixture(scope="session")
def predictor_server(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The trained champions served from MLflow, predictors loaded."""
    log_file = tmp_path_factory.mktemp("served") / "predictions.db"
    with serving(trained.tracking_uri, trained.predictors_dir, log_file) as server:
        wait_for_predictors(server)
        yield server

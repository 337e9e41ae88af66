"""A served model with a trained iris predictor, some traffic through it, and its /metrics.

The `monitored` fixture is one such server for the whole session (tests/conftest.py loads this
module as a plugin), shared by the metrics tests and the Prometheus/Grafana tests.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import API_KEY, Server
from tests.helpers import free_port, running_myllama
from tests.models.predictors.conftest import wait_for_predictors

IRIS = {"sepal_length": 5.8, "sepal_width": 3.0, "petal_length": 4.35, "petal_width": 1.3}


@contextmanager
def monitored_server(work: Path) -> Iterator[Server]:
    """`myllama train iris` into `work`, then serve the model and iris with two slots."""
    uri = f"sqlite:///{work}/mlflow.db"
    predictors = work / "predictors"
    subprocess.run(
        [sys.executable, "-m", "myllama", "train", "iris", "--tracking-uri", uri,
         "--predictors-dir", str(predictors)],
        cwd=work, capture_output=True, check=True, timeout=600,
    )  # fmt: skip
    port = free_port()
    args = ["serve", "--port", str(port), "--api-key", API_KEY, "--parallel", "2"]
    args += ["--max-queue", "8", "--tracking-uri", uri, "--predictors-dir", str(predictors)]
    args += ["--prediction-log", str(work / "predictions.db")]
    url = f"http://127.0.0.1:{port}"
    with running_myllama(args, f"{url}/health", log_name="metrics-server"):
        server = Server(url=url, api_key=API_KEY)
        wait_for_predictors(server)
        yield server


def drive_traffic(server: Server) -> None:
    """A streamed and a plain chat, predictions (good and bad), a 401, a 404 and a stray path."""
    client = OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    messages = [{"role": "user", "content": "Name three colours."}]
    stream = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=messages, max_tokens=16, temperature=0, stream=True
    )
    assert any(c.choices and c.choices[0].delta.content for c in stream)
    client.chat.completions.create(
        model="smollm2-135m-instruct", messages=messages, max_tokens=8, n=2
    )
    headers = server.headers()
    ok = httpx.post(
        f"{server.v1}/predict/iris", json={"inputs": [IRIS, IRIS, IRIS]}, headers=headers
    )
    assert ok.status_code == 200, ok.text
    bad = httpx.post(f"{server.v1}/predict/iris", json={"inputs": [{"x": 1}]}, headers=headers)
    assert bad.status_code == 400, bad.text
    assert httpx.post(f"{server.v1}/predict/nope", json={"inputs": [{}]}, headers=headers)
    assert httpx.get(f"{server.v1}/models").status_code == 401
    assert httpx.get(f"{server.url}/no/such/page/12345", headers=headers).status_code == 404


def scrape(server: Server) -> list[Sample]:
    """Every sample of one /metrics scrape."""
    response = httpx.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    families = text_string_to_metric_families(response.text)
    return [sample for family in families for sample in family.samples]


@dataclass(frozen=True)
class Monitored:
    """The server and the samples of the scrape taken right after drive_traffic()."""

    server: Server
    samples: list[Sample]


@pytest.fixture(scope="session")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    """One monitored server with traffic, for the session."""
    with monitored_server(tmp_path_factory.mktemp("monitored")) as server:
        drive_traffic(server)
        yield Monitored(server, scrape(server))

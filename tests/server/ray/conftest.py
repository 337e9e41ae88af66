"""Ray fixtures: `myllama serve --ray` as a real process with its own local Ray instance."""

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
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY, Server
from tests.helpers import free_port, running_myllama

# 1 thread per replica: two replicas fill this 2-core machine.
ENGINE_FLAGS = ["-t", "1", "--parallel", "4", "--max-queue", "16", "--n-ctx", "512"]


@dataclass(frozen=True)
class RayServer(Server):
    """A `myllama serve --ray` under test, with its work folder."""

    work: Path


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The iris predictor trained into a temp MLflow store (tracking URI, artefacts folder)."""
    work = tmp_path_factory.mktemp("ray-trained")
    uri = f"sqlite:///{work}/mlflow.db"
    flags = ["--tracking-uri", uri, "--predictors-dir", str(work / "predictors")]
    done = subprocess.run(
        [sys.executable, "-m", "myllama", "train", "iris", *flags],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return uri, work / "predictors"


@contextmanager
def ray_serving(
    work: Path, iris: tuple[str, Path], scale: list[str], name: str
) -> Iterator[RayServer]:
    """`myllama serve --ray SCALE...` on a free loopback port until every part is ready."""
    port = free_port()
    uri, predictors_dir = iris
    args = ["serve", "--ray", *scale, *ENGINE_FLAGS, "--port", str(port), "--api-key", API_KEY]
    args += ["--tracking-uri", uri, "--predictors-dir", str(predictors_dir)]
    args += ["--prediction-log", str(work / "predictions.db")]
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with running_myllama(args, f"{url}/health/ready", log_name=name):
        print(f"{name}: ready in {time.monotonic() - started:.1f} s")
        yield RayServer(url=url, api_key=API_KEY, work=work)


def metrics(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
    """/metrics as {sample name: [(labels, value)]}."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def replicas(server: Server) -> dict[str, dict[str, str]]:
    """The live engine replicas /metrics knows: {replica id: its info labels}."""
    return {
        labels["replica"]: labels for labels, _ in metrics(server).get("myllama_replica_info", [])
    }


def per_replica(server: Server, name: str, **match: str) -> dict[str, float]:
    """One per-replica metric summed by replica (over the other labels, filtered by `match`)."""
    totals: dict[str, float] = {}
    for labels, value in metrics(server).get(name, []):
        if all(labels.get(k) == v for k, v in match.items()):
            totals[labels["replica"]] = totals.get(labels["replica"], 0.0) + value
    return totals


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll `check()` until true; the seconds it took (fails after `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"not {what} after {timeout} s")


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any] | str]:
    """The data of each server-sent event ("[DONE]" as a string)."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            yield data if data == "[DONE]" else json.loads(data)

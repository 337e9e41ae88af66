"""The Deployment's server container run for real: its command, its config file and its env, on
loopback; the probes, the key and the HPA's metric answer as the manifests say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.k8s import by_kind
from tests.helpers import free_port, running_myllama


def _probe_url(base: str, probe: dict[str, Any]) -> str:
    return base + probe["httpGet"]["path"]


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    """The container's command with the ConfigMap's config.yaml and the Secret's key; only the
    address and the writable paths moved to this machine. Its URL and the container spec."""
    kinds = by_kind()
    work = tmp_path_factory.mktemp("pod")
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    command = list(container["command"])
    config = work / "config.yaml"
    config.write_text(kinds["ConfigMap"]["data"]["config.yaml"])
    command[command.index("--config") + 1] = str(config)
    port = free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    env = {"MYLLAMA_API_KEY": kinds["Secret"]["stringData"]["api-key"]}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
    # Paths of the pod's volumes and the image's /app, here in the temp folder (env over file).
    env["MYLLAMA_PREDICTION_LOG"] = str(work / "predictions.db")
    env["MYLLAMA_TRACKING_URI"] = f"sqlite:///{work}/mlflow.db"
    env["MYLLAMA_PREDICTORS_DIR"] = str(work / "predictors")
    url = f"http://127.0.0.1:{port}"
    assert command[0] == "myllama"
    readiness = _probe_url(url, container["readinessProbe"])
    with running_myllama(command[1:], readiness, env=env, log_name="k8s-pod"):
        yield url, container


def test_probes_answer_on_the_paths_the_manifest_gives(pod: tuple[str, dict[str, Any]]) -> None:
    """Startup, liveness and readiness probes all get 200 from the ready server."""
    url, container = pod
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        response = httpx.get(_probe_url(url, container[probe]), timeout=container[probe].get(
            "timeoutSeconds", 1
        ))  # fmt: skip
        assert response.status_code == 200, (probe, response.text)


def test_the_config_file_and_threads_are_applied(pod: tuple[str, dict[str, Any]]) -> None:
    """The ConfigMap's settings and the command's --n-threads reach the engine."""
    url, container = pod
    config = yaml.safe_load(by_kind()["ConfigMap"]["data"]["config.yaml"])
    (model,) = httpx.get(f"{url}/health/ready", timeout=10).json()["models"].values()
    for key in ("parallel", "max_queue", "ctx_size"):
        assert model[key] == config[key], key
    command = container["command"]
    assert model["n_threads"] == int(command[command.index("--n-threads") + 1])


def test_the_secret_key_guards_the_api(pod: tuple[str, dict[str, Any]]) -> None:
    """/v1 needs the Secret's key; the probes and /metrics do not."""
    url, _ = pod
    key = by_kind()["Secret"]["stringData"]["api-key"]
    assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{url}/v1/models", headers=headers, timeout=10).status_code == 200


def test_the_hpa_metric_is_scraped_per_model(pod: tuple[str, dict[str, Any]]) -> None:
    """The scrape the pod annotations point at has the HPA's gauge, one series per model."""
    url, _ = pod
    annotations = by_kind()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    text = httpx.get(url + annotations["prometheus.io/path"], timeout=10).text
    name = by_kind()["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]["metric"]["name"]
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    assert family.type == "gauge" and family.samples
    assert all(set(s.labels) == {"model"} for s in family.samples)

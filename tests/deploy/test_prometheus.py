"""The real Prometheus (Debian's binary) scrapes a real server with the shipped rules; the
dashboard's queries name only metrics the server exports, and each one runs in Prometheus."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy.monitoring import PROMETHEUS_CONFIG, RULES, binary, metric_names, panel_queries
from tests.helpers import free_port
from tests.server.metrics_server import Monitored


def test_every_dashboard_query_names_exported_metrics(monitored: Monitored) -> None:
    """Each metric a panel reads is in a real scrape of a server that served chats and iris."""
    exported = {s.name for s in monitored.samples}
    for title, expr in panel_queries():
        missing = metric_names(expr) - exported
        assert not missing, (title, missing)


def _config(tmp: Path, target: str) -> Path:
    """The shipped config with the test server as target, 1 s intervals, absolute rule paths."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rule) for rule in RULES]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_prometheus(config: Path, data: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`prometheus` on a free loopback port: its URL (once ready) and its process."""
    port = free_port()
    log = (data.parent / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _answers(f"{url}/-/ready"), process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until(check: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Poll until check() holds; fail at once if Prometheus exits."""
    deadline = time.monotonic() + 90
    while not check():
        assert process.poll() is None, f"prometheus exited with {process.returncode}"
        assert time.monotonic() < deadline, "condition not reached in 90 s"
        time.sleep(0.2)


def _query(url: str, promql: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and body["status"] == "success", (promql, body)
    return body["data"]


def test_prometheus_scrapes_the_server_and_records_the_vllm_names(
    monitored: Monitored, tmp_path: Path
) -> None:
    """Samples of myllama_requests_running and vllm:num_requests_running arrive; every rule is
    healthy; the target is up; every dashboard query is valid PromQL to the real Prometheus."""
    target = monitored.server.url.removeprefix("http://")
    with running_prometheus(_config(tmp_path, target), tmp_path / "data") as (url, process):

        def has(promql: str) -> bool:
            return bool(_query(url, promql)["result"])

        _until(
            lambda: has("myllama_requests_running") and has("vllm:num_requests_running"), process
        )
        running = _query(url, "vllm:num_requests_running")["result"][0]
        assert running["metric"]["model_name"] == running["metric"]["model"]
        assert has("vllm:time_to_first_token_seconds_count > 0")
        targets = httpx.get(f"{url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        assert [t["health"] for t in targets] == ["up"]
        groups = httpx.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert rules and all(r["health"] != "err" for r in rules), rules
        for _title, expr in panel_queries():
            _query(url, expr.replace("$__rate_interval", "1m"))

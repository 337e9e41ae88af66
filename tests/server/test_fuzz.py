"""Schemathesis fuzzes every operation of the live server's OpenAPI document: never a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.helpers import ROOT, free_port, running_myllama

KEY = "fuzz-key"
MIN_REQUESTS = 1000


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server with small generation caps, so a thousand requests take minutes, not hours."""
    work = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    args = [
        "serve",
        "--port",
        str(port),
        "--api-key",
        KEY,
        "--max-tokens-limit",
        "4",
        "--n-ctx",
        "512",
        "--max-n",
        "2",
        "--max-queue",
        "64",
        "--tracking-uri",
        f"sqlite:///{work}/mlflow.db",
        "--prediction-log",
        str(work / "predictions.db"),
        "--predictors-dir",
        str(work / "predictors"),
    ]
    url = f"http://127.0.0.1:{port}"
    with running_myllama(args, f"{url}/health", log_name="fuzz-server"):
        yield url


@pytest.mark.timeout(1800)  # coverage + fuzzing over 16 operations: ~5 min quiet, ~10 loaded
def test_schemathesis_finds_no_server_error(fuzz_server: str, tmp_path: Path) -> None:
    """Coverage and fuzzing phases over every operation: >= 1,000 requests, zero 5xx."""
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{fuzz_server}/openapi.json",
            "--phases",
            "coverage,fuzzing",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "60",
            "--seed",
            "20261130",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--request-timeout",
            "60",
            "--workers",
            "2",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        cwd=tmp_path,  # its example database stays out of the checkout
        capture_output=True,
        text=True,
        timeout=1700,
    )
    log = ROOT / "test-artifacts" / "logs" / "schemathesis.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:]
    requests = _count_requests(report)
    assert requests >= MIN_REQUESTS, requests
    assert httpx.get(f"{fuzz_server}/health/live", timeout=10).status_code == 200
    client = OpenAI(base_url=f"{fuzz_server}/v1", api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4,
    )
    assert reply.choices[0].message.content is not None


def _count_requests(report: Path) -> int:
    """Requests schemathesis sent, from its ndjson event report."""
    count = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for body in event.values():
            if isinstance(body, dict) and "recorder" in body:
                count += len(body["recorder"].get("interactions", {}))
    return count

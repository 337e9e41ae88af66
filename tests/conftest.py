"""Shared fixtures: one real server with the real 135M model for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers import free_port, running_myllama

API_KEY = "test-key-123"

pytest_plugins = ["tests.server.metrics_server"]  # the session's monitored server (metrics tests)


@dataclass(frozen=True)
class Server:
    """A running server under test."""

    url: str
    api_key: str | None

    @property
    def v1(self) -> str:
        """The OpenAI base URL."""
        return f"{self.url}/v1"

    def headers(self) -> dict[str, str]:
        """Auth headers for raw HTTP calls."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The default model served on a free loopback port, with an API key."""
    port = free_port()
    work = tmp_path_factory.mktemp("server")
    args = [
        "serve",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
        "--parallel",
        "8",
        "--n-ctx",
        "2048",
        "--max-queue",
        "4",
        "--tracking-uri",
        f"sqlite:///{work}/mlflow.db",
        "--prediction-log",
        str(work / "predictions.db"),
        "--predictors-dir",
        str(work / "predictors"),
    ]
    url = f"http://127.0.0.1:{port}"
    with running_myllama(args, f"{url}/health"):
        yield Server(url=url, api_key=API_KEY)

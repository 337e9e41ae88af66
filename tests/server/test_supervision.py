"""Deadlines and the engine watchdog, on the real model in-process (the app under TestClient)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import llama_cpp
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from server.app import create_app
from server.settings import ServerSettings

LONG = {
    "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
    "max_tokens": 1500,
    "temperature": 0.8,
    "seed": 1,
}


def _until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a condition until it holds (fails the test after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    """A started app for some settings (model loaded), closed after the test."""
    opened: list[TestClient] = []

    def start(**overrides: object) -> TestClient:
        settings = ServerSettings(load_predictors=False, parallel=2, n_ctx=2048, **overrides)
        client = TestClient(create_app(settings)).__enter__()
        opened.append(client)
        _until(lambda: client.get("/health/ready").status_code == 200)
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


def test_deadline_ends_a_request_with_504(client_for: Callable[..., TestClient]) -> None:
    """Past --request-timeout a whole answer is a 504; a stream gets an error event, then [DONE]."""
    client = client_for(request_timeout=1.0)
    whole = client.post("/v1/chat/completions", json=LONG)
    assert whole.status_code == 504
    assert whole.json()["error"]["code"] == "request_timeout"
    with client.stream("POST", "/v1/chat/completions", json={**LONG, "stream": True}) as stream:
        events = [line[6:] for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "request_timeout"
    _until(lambda: client.get("/metrics").text.count('reason="cancelled"') > 0)


def test_stalled_engine_fails_fast_and_turns_readiness_red(
    client_for: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stuck in llama_decode: waiting requests end with 503, readiness goes red."""
    client = client_for(watchdog_s=1.0)
    gate = threading.Event()
    real_decode = llama_cpp.llama_decode

    def stuck(ctx: object, batch: object) -> int:
        gate.wait()
        return int(real_decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", stuck)
    answers: list[dict] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.post("/v1/chat/completions", json=LONG).json())
    )
    thread.start()
    try:
        _until(lambda: client.get("/health/ready").status_code == 503)
        ready = client.get("/health/ready").json()
        assert ready["error"]["code"] == "engine_stalled"
        assert ready["parts"]["models"]["state"] == "stalled"
        refused = client.post("/v1/chat/completions", json=LONG)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "engine_stalled"
        thread.join(timeout=60)
        assert answers and answers[0]["error"]["code"] == "engine_stalled"
        assert client.get("/health/live").status_code == 200
    finally:
        gate.set()
        thread.join(timeout=60)
    _until(lambda: client.get("/health/ready").status_code == 200)


def test_empty_api_key_is_refused_at_startup() -> None:
    """An empty or blank key would let 'Bearer ' in: the settings refuse it."""
    for blank in ("", "  "):
        with pytest.raises(ValidationError, match="api_key is empty"):
            ServerSettings(api_key=blank)

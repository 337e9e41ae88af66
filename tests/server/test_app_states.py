"""Server states the real model rarely reaches: loading, failed load, an engine error mid-stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.testclient import TestClient

from models.engine import Finish, GenerationParams, Piece
from server.app import create_app
from server.settings import ServerSettings

CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def _app() -> Any:
    """An app whose lifespan never runs, so its models never load."""
    return create_app(ServerSettings(load_predictors=False))


def test_loading_answers_503_model_loading() -> None:
    """Before the weights are in, /health and /v1 routes say 503 model_loading in the envelope."""
    client = TestClient(_app())
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["error"]["code"] == "model_loading"
    chat = client.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "model_loading"
    assert chat.headers["retry-after"] == "2"


def test_failed_load_answers_503_model_load_failed() -> None:
    """After a failed load, the 503 says so instead of promising a retry."""
    app = _app()
    app.state.load_error = "file is corrupt"
    client = TestClient(app)
    assert client.get("/health").json()["error"]["code"] == "model_load_failed"
    chat = client.post("/v1/chat/completions", json=CHAT)
    assert chat.status_code == 503
    assert chat.json()["error"]["code"] == "model_load_failed"
    assert "retry-after" not in chat.headers


class FailingStream:
    """A token stream that yields one piece, then an engine error."""

    def __init__(self) -> None:
        self._events = [Piece("Hel"), Finish("error", 3, 1, 0, "llama_decode failed with code -3")]

    def __aiter__(self) -> AsyncIterator[Piece | Finish]:
        return self

    async def __anext__(self) -> Piece | Finish:
        if not self._events:
            raise StopAsyncIteration
        return self._events.pop(0)

    def cancel(self) -> None:
        """Nothing to cancel."""


class FailingEngine:
    """Stands in for llama.cpp failing during decode; the test is about the HTTP stream."""

    model_id = "broken"
    n_ctx = 256
    file_sha256 = "0" * 64

    def chat_prompt(self, messages: list[dict[str, Any]]) -> list[int]:
        """Three tokens."""
        return [1, 2, 3]

    async def submit(
        self, prompt: list[int], params: GenerationParams, n: int = 1
    ) -> list[FailingStream]:
        """Streams that fail after one piece."""
        return [FailingStream() for _ in range(n)]

    def stalled_for(self) -> float:
        """Never stalled."""
        return 0.0


def test_engine_error_mid_stream_is_an_error_event_then_done() -> None:
    """Text already sent stays; then one error event in the envelope, then [DONE]."""
    app = _app()
    app.state.pool.engines["broken"] = FailingEngine()
    app.state.ready.set()
    client = TestClient(app)
    with client.stream(
        "POST", "/v1/chat/completions", json={**CHAT, "model": "broken", "stream": True}
    ) as response:
        assert response.status_code == 200
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "engine_failure" and "llama_decode" in error["message"]
    contents = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-2]]
    assert "Hel" in contents
    whole = client.post("/v1/chat/completions", json={**CHAT, "model": "broken"})
    assert whole.status_code == 500
    assert whole.json()["error"]["code"] == "engine_failure"


def test_model_flag_replaces_the_default_and_becomes_it() -> None:
    """`--model ID=PATH` serves that model; requests naming no model go to it."""
    from models.catalog import DEFAULT_MODEL

    settings = ServerSettings(model=[f"mine={DEFAULT_MODEL.gguf_path()}"], load_predictors=False)
    pool = create_app(settings).state.pool
    assert [spec.id for spec in pool.specs] == ["mine"]
    assert pool.default_model == "mine"


def test_batch_smaller_than_slots_is_refused() -> None:
    """The settings refuse n_batch < parallel with a message naming both."""
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="n_batch"):
        ServerSettings(parallel=16, n_batch=8)

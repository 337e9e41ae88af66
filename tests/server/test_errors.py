"""Every error answers with the one envelope and the right HTTP status."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import Server
from tests.server.calls import assert_envelope, post


def test_missing_and_wrong_api_key(server: Server) -> None:
    """Without the key, or with a wrong one, /v1 answers 401; /health stays open."""
    body = {"messages": [{"role": "user", "content": "hi"}]}
    no_key = httpx.post(f"{server.v1}/chat/completions", json=body, timeout=30)
    assert_envelope(no_key, 401, "invalid_api_key")
    wrong = httpx.get(f"{server.v1}/models", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert_envelope(wrong, 401, "invalid_api_key")
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=server.v1, api_key="wrong", max_retries=0).models.list()


def test_unknown_model(server: Server) -> None:
    """An unknown model id is a 404 model_not_found, for chat and for /v1/models/{id}."""
    body = {"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}
    error = assert_envelope(post(server, "/chat/completions", json=body), 404, "model_not_found")
    assert error["param"] == "model"
    resp = httpx.get(f"{server.v1}/models/gpt-17", headers=server.headers(), timeout=30)
    assert_envelope(resp, 404, "model_not_found")


def test_context_length_exceeded(server: Server) -> None:
    """Prompt + max_tokens beyond the context is a 400 context_length_exceeded."""
    long_text = "word " * 3000
    body = {"messages": [{"role": "user", "content": long_text}], "max_tokens": 10}
    assert_envelope(post(server, "/chat/completions", json=body), 400, "context_length_exceeded")
    short = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5000}
    assert_envelope(post(server, "/chat/completions", json=short), 400, "context_length_exceeded")


def test_malformed_json_and_wrong_types(server: Server) -> None:
    """Broken JSON is a 400; wrong types and out-of-range values are a 422 naming the field."""
    broken = post(
        server,
        "/chat/completions",
        content=b'{"messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert_envelope(broken, 400, "invalid_json")
    wrong_type = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}
    error = assert_envelope(post(server, "/chat/completions", json=wrong_type), 422)
    assert error["param"] == "max_tokens"
    hot = {"messages": [{"role": "user", "content": "hi"}], "temperature": 9}
    assert (
        assert_envelope(post(server, "/chat/completions", json=hot), 422)["param"] == "temperature"
    )
    no_messages = {"messages": []}
    assert_envelope(post(server, "/chat/completions", json=no_messages), 422)
    too_many = {"messages": [{"role": "user", "content": "hi"}], "n": 50}
    assert assert_envelope(post(server, "/chat/completions", json=too_many), 400)["param"] == "n"


def test_unsupported_features_are_refused(server: Server) -> None:
    """Features we do not implement are refused clearly, never silently ignored."""
    tools = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert "tools" in assert_envelope(post(server, "/chat/completions", json=tools), 422)["message"]
    logprobs = {"messages": [{"role": "user", "content": "hi"}], "logprobs": True}
    assert_envelope(post(server, "/chat/completions", json=logprobs), 422)


def test_bad_json_schema(server: Server) -> None:
    """A response_format json_schema without a schema object is refused."""
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema"},
    }
    assert_envelope(post(server, "/chat/completions", json=body), 422)


def test_unknown_route_and_method(server: Server) -> None:
    """Framework errors use the envelope too."""
    assert_envelope(httpx.get(f"{server.v1}/nothing", headers=server.headers()), 404, "not_found")
    assert_envelope(httpx.get(f"{server.v1}/chat/completions", headers=server.headers()), 405)

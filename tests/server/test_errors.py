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
    """Broken JSON, wrong types and out-of-range values: 400 invalid_request_error naming the field
    (as OpenAI, vLLM and llama-server answer; the SDK raises BadRequestError)."""
    broken = post(
        server,
        "/chat/completions",
        content=b'{"messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert_envelope(broken, 400, "invalid_json")
    wrong_type = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}
    error = assert_envelope(post(server, "/chat/completions", json=wrong_type), 400)
    assert error["param"] == "max_tokens"
    assert error["type"] == "invalid_request_error"
    hot = {"messages": [{"role": "user", "content": "hi"}], "temperature": 9}
    assert (
        assert_envelope(post(server, "/chat/completions", json=hot), 400)["param"] == "temperature"
    )
    no_messages = {"messages": []}
    assert_envelope(post(server, "/chat/completions", json=no_messages), 400)
    too_many = {"messages": [{"role": "user", "content": "hi"}], "n": 50}
    assert assert_envelope(post(server, "/chat/completions", json=too_many), 400)["param"] == "n"


REFUSED_BY_NAME = [
    ("/chat/completions", "logit_bias", {"1": 5.0}),
    ("/chat/completions", "audio", {"voice": "alloy", "format": "wav"}),
    ("/chat/completions", "prediction", {"type": "content", "content": "x"}),
    ("/chat/completions", "store", True),
    ("/chat/completions", "metadata", {"a": "b"}),
    ("/chat/completions", "reasoning_effort", "high"),
    ("/completions", "suffix", "tail"),
    ("/responses", "previous_response_id", "resp_1"),
    ("/responses", "reasoning", {"effort": "low"}),
    ("/messages", "thinking", {"type": "enabled", "budget_tokens": 1024}),
]
BODIES = {
    "/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/completions": {"prompt": "hi"},
    "/responses": {"input": "hi"},
    "/messages": {
        "model": "smollm2-135m-instruct",
        "max_tokens": 4,
        "messages": [{"role": "user", "content": "hi"}],
    },
}


@pytest.mark.parametrize(("path", "field", "value"), REFUSED_BY_NAME)
def test_unsupported_fields_are_refused_by_name(
    server: Server, path: str, field: str, value: object
) -> None:
    """Every field in the documented refusal list: 400 naming it, never silently ignored."""
    error = assert_envelope(post(server, path, json={**BODIES[path], field: value}), 400)
    assert error["param"] == field
    assert field in error["message"] and "not supported" in error["message"]
    assert error["code"] == "unsupported_field"


@pytest.mark.parametrize("path", sorted(BODIES))
def test_unknown_fields_are_refused_by_name(server: Server, path: str) -> None:
    """A field the server does not know: 400 naming it (a typo is never silently dropped)."""
    error = assert_envelope(post(server, path, json={**BODIES[path], "temprature": 0.5}), 400)
    assert error["param"] == "temprature"
    assert error["code"] == "unsupported_field"


def test_bad_json_schema(server: Server) -> None:
    """A response_format json_schema without a schema object is refused."""
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema"},
    }
    assert_envelope(post(server, "/chat/completions", json=body), 400)


def test_unknown_route_and_method(server: Server) -> None:
    """Framework errors use the envelope too."""
    assert_envelope(httpx.get(f"{server.v1}/nothing", headers=server.headers()), 404, "not_found")
    assert_envelope(httpx.get(f"{server.v1}/chat/completions", headers=server.headers()), 405)

"""Hostile requests against the real server: each gets a clear 4xx, and the service stays up."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from openai import OpenAI

from tests.conftest import Server
from tests.server.calls import assert_envelope, post

HI = [{"role": "user", "content": "Say hello."}]


def _chat_still_answers(server: Server) -> None:
    client = OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=HI,
        max_tokens=8,
        temperature=0,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content


def _schema_body(schema: dict) -> dict:
    return {
        "messages": HI,
        "max_tokens": 8,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "maxLength": 20000}, "maxLength"),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 20000}, "maxItems"),
        ({"type": "string", "pattern": "^a{0,20000}$"}, "pattern repetition"),
        ({"type": "string", "minLength": 10000000}, "minLength"),
        ({"enum": [f"v{i}" for i in range(3000)]}, "enum size"),
    ],
)
def test_schemas_that_crashed_the_process_are_refused(
    server: Server, schema: dict, keyword: str
) -> None:
    """The schemas that once segfaulted llama.cpp's parser get a 400 naming keyword and limit."""
    error = assert_envelope(post(server, "/chat/completions", json=_schema_body(schema)), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "response_format"
    assert keyword in error["message"] and "limit" in error["message"]
    _chat_still_answers(server)


def test_deeply_nested_schema_is_refused(server: Server) -> None:
    """A schema nested far past the depth limit is a 400, not a recursion crash."""
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    error = assert_envelope(post(server, "/chat/completions", json=_schema_body(schema)), 400)
    assert "nesting depth" in error["message"]


def test_schema_within_limits_is_enforced(server: Server) -> None:
    """A reasonable schema still constrains the answer to valid JSON of that shape."""
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 30}},
        "required": ["city"],
    }
    body = {**_schema_body(schema), "max_tokens": 40, "temperature": 0}
    answer = post(server, "/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert "city" in json.loads(answer.json()["choices"][0]["message"]["content"])


@pytest.mark.parametrize("prompt", ["", "   \n\t "])
def test_empty_prompt_is_a_400_and_spares_the_neighbours(server: Server, prompt: str) -> None:
    """An empty completion prompt is refused; a stream running beside it finishes normally."""
    finished: list[str | None] = []

    def neighbour() -> None:
        client = OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
        stream = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=HI,  # type: ignore[arg-type]
            max_tokens=24,
            stream=True,
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                finished.append(chunk.choices[0].finish_reason)

    thread = threading.Thread(target=neighbour)
    thread.start()
    error = assert_envelope(post(server, "/completions", json={"prompt": prompt}), 400)
    assert error["param"] == "prompt"
    thread.join(timeout=120)
    assert finished and finished[0] in ("stop", "length")


def test_key_is_checked_before_the_body(server: Server) -> None:
    """Without the key, even a broken body is a 401: nothing is parsed for strangers."""
    response = httpx.post(
        f"{server.v1}/chat/completions",
        content=b"{bad",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert_envelope(response, 401, "invalid_api_key")


def test_body_over_the_limit_is_a_413(server: Server) -> None:
    """A body over --max-body-bytes (8 MiB by default) is refused with 413."""
    big = json.dumps({"messages": [{"role": "user", "content": "a" * (9 << 20)}]})
    response = post(server, "/chat/completions", content=big.encode())
    assert_envelope(response, 413, "request_too_large")
    _chat_still_answers(server)


def test_size_caps_are_400s(server: Server) -> None:
    """Too many messages or too much text: 400 naming the cap, before any tokenizing."""
    many = [{"role": "user", "content": "x"}] * 1025
    too_many = post(server, "/chat/completions", json={"messages": many})
    assert_envelope(too_many, 400, "too_many_messages")
    long_text = [{"role": "user", "content": "word " * 250_000}]
    too_long = post(server, "/chat/completions", json={"messages": long_text})
    assert_envelope(too_long, 400, "prompt_too_long")


def test_n_is_capped_and_choices_agree(server: Server) -> None:
    """n above --max-n (4) is a 400; n=3 at temperature 0 gives three identical choices."""
    over = post(server, "/chat/completions", json={"messages": HI, "n": 5})
    assert assert_envelope(over, 400, "n_too_big")["param"] == "n"
    body = {"messages": HI, "n": 3, "max_tokens": 12, "temperature": 0}
    answer = post(server, "/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    texts = {c["message"]["content"] for c in answer.json()["choices"]}
    assert len(texts) == 1 and texts.pop()


def test_liveness_and_readiness(server: Server) -> None:
    """/health/live says alive; /health/ready lists every part's state, all ready."""
    assert httpx.get(f"{server.url}/health/live", timeout=10).json() == {"status": "alive"}
    ready = httpx.get(f"{server.url}/health/ready", timeout=10)
    assert ready.status_code == 200
    parts = ready.json()["parts"]
    assert parts["models"]["state"] == "ready"
    assert parts["predictors"]["state"] in ("ready", "disabled")
    assert set(parts) == {"models", "predictors", "embedder"}

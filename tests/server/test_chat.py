"""Chat completions through the official openai SDK against the real server and model."""

from __future__ import annotations

import json
import threading

import pytest
from openai import OpenAI
from pydantic import BaseModel

from tests.conftest import Server

MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def client(server: Server) -> OpenAI:
    """The official SDK, pointed at our server."""
    return OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)


def test_chat_non_stream(client: OpenAI) -> None:
    """A plain completion has text, a finish reason and consistent usage."""
    reply = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=24, temperature=0
    )
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 10
    assert 0 < reply.usage.completion_tokens <= 24
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_stream_equals_non_stream(client: OpenAI) -> None:
    """At temperature 0 with a seed, the streamed text is exactly the non-streamed text."""
    args = dict(messages=QUESTION, max_tokens=40, temperature=0, seed=7)
    whole = client.chat.completions.create(model=MODEL, **args).choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL, stream=True, **args))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text == whole
    assert finishes[-1] in ("stop", "length")
    assert all(f is None for f in finishes[:-1])


def test_stream_include_usage(client: OpenAI) -> None:
    """include_usage adds one final chunk with no choices and the full usage."""
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 12
    assert last.usage.total_tokens == last.usage.prompt_tokens + 12
    assert all(c.usage is None for c in chunks[:-1])


def test_max_completion_tokens_wins(client: OpenAI) -> None:
    """max_completion_tokens overrides max_tokens."""
    reply = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=30, max_completion_tokens=5, temperature=0
    )
    assert reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"


def test_stop_strings_are_cut(client: OpenAI) -> None:
    """Generation ends at a stop string, which is not included."""
    args = dict(
        messages=[{"role": "user", "content": "Count from 1 to 20, separated by commas."}],
        max_tokens=60,
        temperature=0,
    )
    free = client.chat.completions.create(model=MODEL, **args).choices[0].message.content
    assert "5" in free, free
    cut = client.chat.completions.create(model=MODEL, stop=["5"], **args).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.message.content == free[: free.index("5")]
    streamed = client.chat.completions.create(model=MODEL, stop="5", stream=True, **args)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == cut.message.content


def test_json_object_mode(client: OpenAI) -> None:
    """response_format json_object yields parseable JSON."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe a cat as JSON with name and age."}],
        response_format={"type": "json_object"},
        max_tokens=120,
        temperature=0,
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


class City(BaseModel):
    """The schema the model must follow."""

    name: str
    country: str
    population: int


def test_json_schema_mode(client: OpenAI) -> None:
    """response_format json_schema yields JSON that validates against the schema."""
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Give me a city as JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": City.model_json_schema(), "strict": True},
        },
        max_tokens=120,
        temperature=0,
    )
    City.model_validate_json(reply.choices[0].message.content)


def test_n_choices(client: OpenAI) -> None:
    """n > 1 returns n independent choices."""
    reply = client.chat.completions.create(
        model=MODEL, messages=QUESTION, n=3, max_tokens=8, temperature=1.0, seed=1
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.content for c in reply.choices)
    assert 3 <= reply.usage.completion_tokens <= 3 * 8


def test_two_concurrent_streams_finish(client: OpenAI) -> None:
    """Two streams at once both run to their end; neither is cut off."""
    results: dict[int, tuple[str, str | None]] = {}

    def run(i: int) -> None:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": f"Tell me a fact about the number {i}."}],
            max_tokens=48,
            temperature=0,
            stream=True,
        )
        text, finish = "", None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        results[i] = (text, finish)

    threads = [threading.Thread(target=run, args=(i,)) for i in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(results) == {3, 4}
    for text, finish in results.values():
        assert text.strip()
        assert finish in ("stop", "length")


def test_text_completion(client: OpenAI) -> None:
    """/v1/completions continues a prompt string, streamed or not."""
    reply = client.completions.create(model=MODEL, prompt="The sky is", max_tokens=8, temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].text
    assert reply.usage.completion_tokens <= 8
    streamed = client.completions.create(
        model=MODEL, prompt="The sky is", max_tokens=8, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == reply.choices[0].text


def test_models_listing(client: OpenAI) -> None:
    """/v1/models lists the default model; /v1/models/{id} returns it."""
    ids = [m.id for m in client.models.list()]
    assert "smollm2-135m-instruct" in ids
    assert client.models.retrieve("smollm2-135m-instruct").id == "smollm2-135m-instruct"

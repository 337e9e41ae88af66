"""Every response shape of every dialect, from the real server and model, parsed with the SDKs'
own typed models (zero parse errors), plus a tool loop and logprobs with the real model."""

from __future__ import annotations

import json
import math
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types import Completion, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.conftest import Server

MODEL = "smollm2-135m-instruct"
USER = [{"role": "user", "content": "Name a colour."}]
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 20}},
            "required": ["city"],
        },
    },
}


def _events(server: Server, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON data of every event of a streamed request."""
    headers = {**server.headers(), "x-api-key": server.api_key or ""}
    with httpx.stream(
        "POST", f"{server.v1}{path}", json={**body, "stream": True}, headers=headers, timeout=120
    ) as reply:
        assert reply.status_code == 200, reply.read()
        data = [line.removeprefix("data: ") for line in reply.iter_lines()]
    return [json.loads(d) for d in data if d.startswith("{")]


def _post(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {**server.headers(), "x-api-key": server.api_key or ""}
    reply = httpx.post(f"{server.v1}{path}", json=body, headers=headers, timeout=120)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


CASES: list[tuple[str, dict[str, Any], Any, Any]] = [
    (
        "/chat/completions",
        {"messages": USER, "max_tokens": 8, "logprobs": True, "top_logprobs": 2, "n": 2},
        ChatCompletion,
        ChatCompletionChunk,
    ),
    (
        "/chat/completions",
        {
            "messages": USER,
            "max_tokens": 40,
            "tools": [TOOL],
            "tool_choice": "required",
            "stream_options": None,
        },
        ChatCompletion,
        ChatCompletionChunk,
    ),
    (
        "/completions",
        {"prompt": "Once upon", "max_tokens": 6, "logprobs": 2},
        Completion,
        Completion,
    ),
    (
        "/responses",
        {"input": "Name a colour.", "max_output_tokens": 8, "instructions": "Be brief."},
        Response,
        ResponseStreamEvent,
    ),
    (
        "/responses",
        {
            "input": "Weather in Oslo?",
            "tools": [{**TOOL["function"], "type": "function"}],
            "tool_choice": "required",
            "max_output_tokens": 40,
        },
        Response,
        ResponseStreamEvent,
    ),
    (
        "/messages",
        {"model": MODEL, "max_tokens": 8, "messages": USER, "system": "Be brief."},
        Message,
        RawMessageStreamEvent,
    ),
    (
        "/messages",
        {
            "model": MODEL,
            "max_tokens": 40,
            "messages": USER,
            "tools": [{"name": "get_weather", "input_schema": TOOL["function"]["parameters"]}],
            "tool_choice": {"type": "any"},
        },
        Message,
        RawMessageStreamEvent,
    ),
]


@pytest.mark.parametrize(("path", "body", "whole", "event"), CASES)
def test_every_shape_parses_with_the_sdk_models(
    server: Server, path: str, body: dict[str, Any], whole: Any, event: Any
) -> None:
    """Non-streamed objects and every streamed event validate against the SDK's own models."""
    TypeAdapter(whole).validate_python(_post(server, path, body))
    events = _events(
        server,
        path,
        {**body, "stream_options": {"include_usage": True}}
        if path in ("/chat/completions", "/completions")
        else body,
    )
    assert events
    adapter = TypeAdapter(event)
    for data in events:
        adapter.validate_python(_as_sdk_reads_it(path, data))


def _as_sdk_reads_it(path: str, data: dict[str, Any]) -> dict[str, Any]:
    """A text-completion chunk with `finish_reason: null` as the SDK's model can hold it.

    OpenAI (and vLLM) stream `"finish_reason": null` until a choice ends, but the SDK reuses its
    non-streamed `Completion` model, whose finish_reason is never null, for chunks (it builds
    streamed objects without validation). Only that field is relaxed; everything else is strict.
    """
    if path != "/completions":
        return data
    choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in data["choices"]]
    return {**data, "choices": choices}


def test_models_list_parses_and_states_the_context(server: Server) -> None:
    """/v1/models: SDK Model objects, each with max_model_len."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    models = client.models.list().data
    assert models and all(isinstance(m, Model) for m in models)
    raw = httpx.get(f"{server.v1}/models", headers=server.headers()).json()
    assert raw["data"][0]["max_model_len"] == 2048


def test_tool_loop_call_result_answer(server: Server) -> None:
    """The full loop with the real model: a forced call, the tool's result, a final answer."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
        temperature=0,
        max_tokens=60,
    )
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "12 C and raining"},
    ]
    final = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[TOOL],
        tool_choice="none",
        temperature=0,
        max_tokens=30,
    )
    assert final.choices[0].message.content
    assert final.choices[0].finish_reason in ("stop", "length")


def test_logprobs_are_the_greedy_choice_and_a_distribution(server: Server) -> None:
    """At temperature 0 each token is its own top-1; logprobs are <= 0 and their mass <= 1."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    answer = client.chat.completions.create(
        model=MODEL, messages=USER, temperature=0, max_tokens=12, logprobs=True, top_logprobs=5
    )
    content = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content and "".join(t.token for t in content) == answer.choices[0].message.content
    for token in content:
        assert token.top_logprobs[0].token == token.token
        assert math.isclose(token.top_logprobs[0].logprob, token.logprob, abs_tol=1e-5)
        values = [t.logprob for t in token.top_logprobs]
        assert values == sorted(values, reverse=True) and values[0] <= 0
        assert sum(math.exp(v) for v in values) <= 1 + 1e-4
        assert bytes(token.bytes or []).decode(errors="replace") == token.token


def test_streamed_equals_whole_in_every_dialect(server: Server) -> None:
    """At temperature 0 the streamed text equals the whole answer (responses and messages)."""
    oa = openai.OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    whole = oa.responses.create(
        model=MODEL, input="Name a colour.", temperature=0, max_output_tokens=16
    )
    with oa.responses.create(
        model=MODEL, input="Name a colour.", temperature=0, max_output_tokens=16, stream=True
    ) as events:
        ends = [e for e in events if e.type in ("response.completed", "response.incomplete")]
    (end,) = ends  # response.incomplete when max_output_tokens cut it, as OpenAI sends it
    assert end.response.status == whole.status
    assert whole.output_text == end.response.output_text and whole.output_text
    an = anthropic.Anthropic(base_url=server.url, api_key=server.api_key, max_retries=0)
    greedy = {"temperature": 0}  # this SDK version has no temperature argument: sent as is
    message = an.messages.create(model=MODEL, max_tokens=16, messages=USER, extra_body=greedy)
    with an.messages.stream(model=MODEL, max_tokens=16, messages=USER, extra_body=greedy) as stream:
        text = "".join(stream.text_stream)
    assert message.content[0].text == text  # type: ignore[union-attr]

"""The serving layer on a scripted engine: every dialect, tools, logprobs, usage, keep-alive.

The app is the real one (create_app) served by uvicorn on loopback and driven by the official
SDKs; only the engine is a fake (tests.server.serving.fake_engine), so these tests are about the
serving path: what reaches the engine and how its events become each dialect's objects.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest
import uvicorn

from server.app import create_app
from server.settings import ServerSettings
from tests.helpers import free_port
from tests.server.serving.fake_engine import FakeEngine, Script

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
MODEL = "smollm2-135m-instruct"
CALL_TEXT = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


@dataclass
class FakeServer:
    """The real app on a fake engine."""

    url: str
    engine: FakeEngine

    def openai(self) -> openai.OpenAI:
        """An OpenAI client for it."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="k", max_retries=0)


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    """uvicorn on a free port serving create_app with a FakeEngine factory."""
    work = tmp_path_factory.mktemp("fake")
    settings = ServerSettings(
        port=free_port(),
        load_predictors=False,
        prediction_log=work / "p.db",
        tracking_uri=f"sqlite:///{work}/m.db",
        sse_keepalive=0.05,
        log_level="warning",
    )
    app = create_app(settings, engine_factory=FakeEngine)
    server = uvicorn.Server(uvicorn.Config(app, port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and app.state.ready.is_set()) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the server's own state flags
    engine = app.state.pool.get(None)
    try:
        yield FakeServer(f"http://127.0.0.1:{settings.port}", engine)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def engine(fake: FakeServer) -> FakeEngine:
    """The fake engine, reset for one test."""
    fake.engine.script = Script()
    fake.engine.tools_in_template = False
    fake.engine.submitted.clear()
    fake.engine.prompts.clear()
    fake.engine.tools_seen.clear()
    return fake.engine


def test_chat_reaches_the_engine_as_parameters_and_returns_typed_objects(
    fake: FakeServer, engine: FakeEngine
) -> None:
    """Sampling fields become GenerationParams; the answer parses as the SDK's ChatCompletion."""
    answer = fake.openai().chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        temperature=0.3,
        top_p=0.9,
        max_completion_tokens=7,
        stop=["\n"],
        seed=5,
    )
    params = engine.submitted[-1]
    assert (params.temperature, params.top_p, params.max_tokens) == (0.3, 0.9, 7)
    assert params.stop == ("\n",) and params.seed == 5 and params.logprobs is None
    assert engine.prompts[-1][0] == {"role": "system", "content": "Be brief."}
    assert answer.choices[0].message.content == "Hello world"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 2


def test_stream_with_usage_has_null_usage_on_every_chunk_but_the_last(fake: FakeServer) -> None:
    """include_usage: `"usage": null` on each chunk, then one chunk with no choices and usage."""
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = _sse_json(fake, "/v1/chat/completions", body)
    assert all("usage" in c for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    plain = _sse_json(fake, "/v1/chat/completions", {**body, "stream_options": None})
    assert all("usage" not in c for c in plain)


def test_auto_tools_are_prompted_and_calls_are_parsed(fake: FakeServer, engine: FakeEngine) -> None:
    """auto on a template without tools: our system prompt lists them; <tool_call> is parsed."""
    engine.script = Script(pieces=["<tool_", "call>", CALL_TEXT.removeprefix("<tool_call>")])
    answer = fake.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Paris?"}], tools=[WEATHER_TOOL]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    system = engine.prompts[-1][0]
    assert system["role"] == "system" and '"name": "get_weather"' in system["content"]
    assert engine.submitted[-1].json_schema is None  # auto: the model may also answer in text


def test_template_that_knows_tools_gets_them(fake: FakeServer, engine: FakeEngine) -> None:
    """When the GGUF template renders tools, the engine gets the tool list, not our prompt."""
    engine.tools_in_template = True
    fake.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], tools=[WEATHER_TOOL]
    )
    assert engine.tools_seen[-1] == [WEATHER_TOOL]
    assert engine.prompts[-1] == [{"role": "user", "content": "Hi"}]


def test_required_and_named_tools_are_enforced_by_a_grammar(
    fake: FakeServer, engine: FakeEngine
) -> None:
    """required/named: the engine gets the calls schema; the JSON answer becomes tool calls."""
    engine.script = Script(pieces=['[{"name": "get_weather", ', '"arguments": {"city": "Oslo"}}]'])
    answer = fake.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    schema = json.loads(engine.submitted[-1].json_schema or "null")
    assert schema["maxItems"] == 1
    assert schema["items"]["properties"]["name"] == {"const": "get_weather"}
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    assert answer.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_calls_accumulate_to_the_same_call(
    fake: FakeServer, engine: FakeEngine
) -> None:
    """Streaming: the SDK's accumulated tool-call deltas equal the non-streamed call."""
    engine.script = Script(pieces=["Checking. ", CALL_TEXT])
    stream = fake.openai().chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL]
    )
    with stream as events:
        final = events.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking. "
    assert message.tool_calls and message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_turns_become_text_for_a_template_without_tools(
    fake: FakeServer, engine: FakeEngine
) -> None:
    """An assistant tool call and a tool result reach such a template as readable turns."""
    fake.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    turns = engine.prompts[-1]
    call = '<tool_call>{"name": "get_weather", "arguments": {"city":"Paris"}}'
    assert call in turns[2]["content"]
    assert turns[3] == {"role": "user", "content": "<tool_response>\n18 C, sunny\n</tool_response>"}


def test_logprobs_reach_the_engine_and_come_back_in_both_shapes(
    fake: FakeServer, engine: FakeEngine
) -> None:
    """top_logprobs=k asks the engine for k; chat and completions report them in their shapes."""
    chat = fake.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], logprobs=True, top_logprobs=2
    )
    assert engine.submitted[-1].logprobs == 2
    content = chat.choices[0].logprobs.content  # type: ignore[union-attr]
    assert [t.token for t in content] == ["Hello", " world"]  # type: ignore[union-attr]
    assert [len(t.top_logprobs) for t in content] == [2, 2]  # type: ignore[union-attr]
    text = fake.openai().completions.create(model=MODEL, prompt="Hi", logprobs=1, max_tokens=3)
    legacy = text.choices[0].logprobs
    assert legacy is not None and legacy.tokens == ["Hello", " world"]
    assert legacy.text_offset == [0, 5]
    assert legacy.top_logprobs == [{"Hello0": -1.0}, {" world0": -1.0}]


def test_keep_alive_comments_while_the_answer_waits(fake: FakeServer, engine: FakeEngine) -> None:
    """Nothing to send yet: the stream sends SSE comments until the first token, then data."""
    gate = threading.Event()
    engine.script = Script(gate=gate)
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    lines: list[str] = []
    with httpx.stream("POST", f"{fake.url}/v1/chat/completions", json=body, timeout=30) as reply:
        for line in reply.iter_lines():
            lines.append(line)
            if line.startswith(": keep-alive") and not gate.is_set():
                gate.set()
    first_alive = lines.index(": keep-alive")
    first_text = next(i for i, line in enumerate(lines) if '"content": "Hello"' in line)
    assert first_alive < first_text and lines[-2:] == ["data: [DONE]", ""]


def test_responses_api_with_the_sdk(fake: FakeServer, engine: FakeEngine) -> None:
    """responses.create and .stream: instructions and input reach the engine as a chat."""
    client = fake.openai()
    response = client.responses.create(
        model=MODEL, instructions="Be brief.", input="Hi", max_output_tokens=9
    )
    assert response.output_text == "Hello world" and response.status == "completed"
    assert engine.prompts[-1] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert engine.submitted[-1].max_tokens == 9
    with client.responses.stream(model=MODEL, input="Hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "Hello world" == final.output_text


def test_responses_function_call_loop(fake: FakeServer, engine: FakeEngine) -> None:
    """A function_call item comes out; sending it back with its output reaches the engine."""
    engine.script = Script(pieces=[CALL_TEXT])
    tool = {**WEATHER_TOOL["function"], "type": "function"}  # type: ignore[dict-item]
    response = fake.openai().responses.create(model=MODEL, input="Weather?", tools=[tool])
    (call,) = [item for item in response.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    engine.script = Script(pieces=["Sunny."])
    follow = fake.openai().responses.create(
        model=MODEL,
        tools=[tool],
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "18 C"},
        ],
    )
    assert follow.output_text == "Sunny."
    assert engine.prompts[-1][-1]["content"] == "<tool_response>\n18 C\n</tool_response>"


def test_messages_api_with_the_anthropic_sdk(fake: FakeServer, engine: FakeEngine) -> None:
    """messages.create and .stream, with the x-api-key header the SDK sends."""
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    message = client.messages.create(
        model=MODEL,
        max_tokens=5,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hi"}],
        stop_sequences=["."],
    )
    assert message.content[0].type == "text" and message.content[0].text == "Hello world"
    assert message.stop_reason == "end_turn"
    assert engine.submitted[-1].stop == (".",) and engine.submitted[-1].max_tokens == 5
    engine.script = Script(stop_sequence=";")
    stopped = client.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=[{"role": "user", "content": "Hi"}],
        stop_sequences=[";"],
    )
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", ";")
    engine.script = Script(reason="length")
    with client.messages.stream(
        model=MODEL, max_tokens=2, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello world" and final.stop_reason == "max_tokens"


def test_messages_tool_use_round_trip(fake: FakeServer, engine: FakeEngine) -> None:
    """A tool_use block comes out (stop_reason tool_use); a tool_result goes back in."""
    engine.script = Script(pieces=[CALL_TEXT])
    client = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    }
    message = client.messages.create(
        model=MODEL, max_tokens=50, tools=[tool], messages=[{"role": "user", "content": "Weather?"}]
    )
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert message.stop_reason == "tool_use" and use.input == {"city": "Paris"}
    engine.script = Script(pieces=["Sunny."])
    client.messages.create(
        model=MODEL,
        max_tokens=50,
        tools=[tool],
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [use.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 C"}],
            },
        ],
    )
    assert engine.prompts[-1][-1] == {
        "role": "user",
        "content": "<tool_response>\n18 C\n</tool_response>",
    }


def test_tokenize_and_detokenize(fake: FakeServer) -> None:
    """/tokenize gives ids, their count and the context; /detokenize reverses it."""
    tokens = httpx.post(f"{fake.url}/tokenize", json={"prompt": "abc"}).json()
    assert tokens == {"count": 3, "max_model_len": 2048, "tokens": [97, 98, 99]}
    text = httpx.post(f"{fake.url}/detokenize", json={"tokens": [97, 98]}).json()
    assert text == {"prompt": "ab"}


def test_openapi_describes_every_response_and_the_error_envelope(fake: FakeServer) -> None:
    """The document names the response model of each dialect and 400 (not 422) errors."""
    document = httpx.get(f"{fake.url}/openapi.json").json()
    expected = {
        "/v1/chat/completions": "ChatCompletion",
        "/v1/completions": "Completion",
        "/v1/responses": "Response",
        "/v1/messages": "MessageOut",
        "/v1/embeddings": "EmbeddingList",
        "/tokenize": "TokenizeResponse",
    }
    for path, model in expected.items():
        answers = document["paths"][path]["post"]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert "422" not in answers
        assert answers["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "ErrorResponse"
        )


def _sse_json(fake: FakeServer, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON data events of a stream (without [DONE])."""
    with httpx.stream("POST", f"{fake.url}{path}", json=body, timeout=30) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: {")]
    return [json.loads(line.removeprefix("data: ")) for line in lines]


def test_deprecated_functions_are_mapped_onto_tools(fake: FakeServer, engine: FakeEngine) -> None:
    """functions + function_call naming one: the same grammar-forced call as tools would give."""
    engine.script = Script(pieces=['[{"name": "get_weather", "arguments": {"city": "Rome"}}]'])
    body = {
        "messages": [{"role": "user", "content": "Weather?"}],
        "functions": [WEATHER_TOOL["function"]],
        "function_call": {"name": "get_weather"},
    }
    reply = httpx.post(f"{fake.url}/v1/chat/completions", json=body, timeout=30).json()
    schema = json.loads(engine.submitted[-1].json_schema or "null")
    assert schema["items"]["properties"]["name"] == {"const": "get_weather"}
    (call,) = reply["choices"][0]["message"]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {"city": "Rome"}
    both = {**body, "tools": [WEATHER_TOOL]}
    error = httpx.post(f"{fake.url}/v1/chat/completions", json=both, timeout=30).json()["error"]
    assert "not both" in error["message"] and error["type"] == "invalid_request_error"

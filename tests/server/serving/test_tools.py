"""Tool calls read back from answers, and the schema that forces them (pure functions)."""

from __future__ import annotations

import json

from server.serving.tools import (
    FunctionSpec,
    ToolCallReader,
    ToolUse,
    calls_schema,
    parse_blocks,
    parse_forced,
)

WEATHER = FunctionSpec("get_weather", "Weather in a city", {"type": "object"})
TIME = FunctionSpec("get_time", None, {"type": "object", "properties": {"tz": {"type": "string"}}})


def test_blocks_are_calls_and_the_rest_is_text() -> None:
    """Each <tool_call> block is one call; text around them is kept; a bad block stays text."""
    text, calls = parse_blocks(
        'Let me check.<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}'
        '</tool_call>\n<tool_call>{"name": "get_time", "parameters": {}}</tool_call>'
    )
    assert text == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    assert calls[0].id != calls[1].id and calls[0].id.startswith("call_")
    text, calls = parse_blocks("<tool_call>not json</tool_call> fine")
    assert calls == [] and text == "<tool_call>not json</tool_call> fine"


def test_reader_streams_text_and_holds_back_a_possible_call() -> None:
    """Plain text streams at once; a prefix of <tool_call> waits; a call is never streamed."""
    reader = ToolCallReader()
    assert reader.feed("Hello <to") == "Hello "
    assert reader.feed("y>!") == "<toy>!"  # not a call after all: released
    assert reader.finish() == ("", [])
    reader = ToolCallReader()
    streamed = reader.feed("Sure.<tool_") + reader.feed('call>{"name": "get_time", "arguments"')
    streamed += reader.feed(": {}}</tool_call>")
    assert streamed == "Sure."
    rest, calls = reader.finish()
    assert rest == "" and [c.name for c in calls] == ["get_time"]


def test_unclosed_or_unreadable_call_is_returned_as_text() -> None:
    """A block cut off by max_tokens is no call: its text comes back, nothing is lost."""
    reader = ToolCallReader()
    assert reader.feed('<tool_call>{"name": "get_ti') == ""
    assert reader.finish() == ('<tool_call>{"name": "get_ti', [])


def test_forced_schema_allows_only_calls_to_the_offered_functions() -> None:
    """required: an array of calls to any offered function; named: exactly one to that one."""
    required = calls_schema(ToolUse((WEATHER, TIME), "required", None, True))
    assert required["minItems"] == 1 and "maxItems" not in required
    names = [v["properties"]["name"]["const"] for v in required["items"]["anyOf"]]
    assert names == ["get_weather", "get_time"]
    named = calls_schema(ToolUse((WEATHER, TIME), "named", "get_time", False))
    assert named["maxItems"] == 1
    assert named["items"]["properties"]["name"] == {"const": "get_time"}
    assert named["items"]["properties"]["arguments"] == TIME.parameters
    serial = calls_schema(ToolUse((WEATHER,), "required", None, False))
    assert serial["maxItems"] == 1


def test_forced_answer_parses_into_calls() -> None:
    """A grammar-forced answer is a JSON array of calls; a cut-off one yields none."""
    calls = parse_forced('[{"name": "get_time", "arguments": {"tz": "UTC"}}]')
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_time", {"tz": "UTC"})]
    assert parse_forced('[{"name": "get_ti') == []

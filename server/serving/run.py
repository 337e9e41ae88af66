"""The one generation path every dialect uses: an Ask in, text, tool calls and usage out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request

from models.engine import Engine, Finish, GenerationParams, Piece
from models.engine.pool import EnginePool
from server.serving.generation import Generation, Origin, check_prompt_size
from server.serving.tools import (
    Call,
    ToolCallReader,
    ToolUse,
    calls_schema,
    generic_prompt,
    parse_forced,
)
from server.settings import ServerSettings


@dataclass(frozen=True)
class Ask:
    """What a request asks of a model, whatever its dialect."""

    endpoint: str  # the dialect, as the completions log records it
    request_id: str
    model: str | None
    params: GenerationParams
    messages: list[dict[str, Any]] | None = None  # a chat, or
    text: str | None = None  # a plain completion prompt
    n: int = 1
    schema: dict[str, Any] | None = None  # the answer must match this JSON Schema
    tools: ToolUse = field(default_factory=ToolUse)


@dataclass(frozen=True)
class TextDelta:
    """New answer text of one choice (with its tokens' logprobs when asked)."""

    index: int
    text: str
    logprobs: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ToolCalls:
    """The function calls of one choice, once its answer is complete."""

    index: int
    calls: list[Call]


@dataclass(frozen=True)
class ChoiceEnd:
    """The end of one choice: stop, length or tool_calls."""

    index: int
    reason: str
    finish: Finish


Event = TextDelta | ToolCalls | ChoiceEnd


@dataclass
class Answer:
    """One finished choice."""

    text: str
    calls: list[Call]
    logprobs: list[Any]
    reason: str
    finish: Finish | None


@dataclass(frozen=True)
class Usage:
    """Token counts over all choices."""

    prompt: int
    completion: int
    cached: int


def _as_text_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool turns as plain text, for a template that knows no tools."""
    out = []
    for message in messages:
        if message.get("tool_calls"):
            blocks = [
                f'<tool_call>{{"name": {json.dumps(c["function"]["name"])}, '
                f'"arguments": {c["function"]["arguments"] or "{}"}}}</tool_call>'
                for c in message["tool_calls"]
            ]
            content = "\n".join(filter(None, [message.get("content") or "", *blocks]))
            out.append({"role": "assistant", "content": content})
        elif message["role"] == "tool":
            content = f"<tool_response>\n{message.get('content') or ''}\n</tool_response>"
            out.append({"role": "user", "content": content})
        else:
            out.append({"role": message["role"], "content": message.get("content") or ""})
    return out


def _with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The messages with `text` at the start of the system prompt."""
    if messages and messages[0]["role"] == "system":
        first = {**messages[0], "content": f"{text}\n\n{messages[0]['content']}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def render_chat(engine: Engine, messages: list[dict[str, Any]], tools: ToolUse) -> list[int]:
    """Tokens of a chat: tools rendered by the model's template when it can, else by our prompt."""
    if tools.active and engine.supports_tools() and not tools.forced:
        return engine.chat_prompt(messages, [f.as_openai() for f in tools.functions])
    if not tools.active:
        has_tool_turns = any(m.get("tool_calls") or m["role"] == "tool" for m in messages)
        if not has_tool_turns or engine.supports_tools():
            return engine.chat_prompt(messages)
        return engine.chat_prompt(_as_text_messages(messages))
    return engine.chat_prompt(_with_system(_as_text_messages(messages), generic_prompt(tools)))


def _schema_text(schema: dict[str, Any]) -> str:
    """The schema as compact JSON text, key order kept (the engine compiles and caches it)."""
    return json.dumps(schema, separators=(",", ":"))


class Run:
    """A started generation, read as dialect-neutral events or collected whole."""

    def __init__(self, ask: Ask, engine: Engine, generation: Generation) -> None:
        self.ask = ask
        self.engine = engine
        self.generation = generation

    @property
    def model_id(self) -> str:
        """The id of the model that answers."""
        return self.engine.model_id

    async def events(
        self, keepalive_s: float | None = None, watch_disconnect: bool = False
    ) -> AsyncIterator[Event | None]:
        """Text deltas, tool calls and choice ends in order; None is a keep-alive tick."""
        tools = self.ask.tools
        readers = [ToolCallReader() for _ in range(self.ask.n)]
        async for item in self.generation.events(watch_disconnect, keepalive_s):
            if item is None:
                yield None
                continue
            index, event = item
            if isinstance(event, Piece):
                if tools.forced:
                    continue  # the whole answer is calls: read at the end
                text = readers[index].feed(event.text) if tools.active else event.text
                if text or event.logprobs:
                    yield TextDelta(index, text, tuple(event.logprobs))
                continue
            if event.reason not in ("stop", "length"):
                continue
            calls: list[Call] = []
            if tools.forced:
                calls = parse_forced("".join(self.generation.choices[index].text))
            elif tools.active:
                rest, calls = readers[index].finish()
                if rest:
                    yield TextDelta(index, rest)
            if calls:
                yield ToolCalls(index, calls)
            reason = "tool_calls" if calls and event.reason == "stop" else event.reason
            yield ChoiceEnd(index, reason, event)

    async def collect(self) -> list[Answer]:
        """Run every choice to its end (cancelled if the client goes away meanwhile)."""
        texts: list[list[str]] = [[] for _ in range(self.ask.n)]
        answers: list[Answer | None] = [None] * self.ask.n
        calls: list[list[Call]] = [[] for _ in range(self.ask.n)]
        async for event in self.events(watch_disconnect=True):
            if isinstance(event, TextDelta):
                texts[event.index].append(event.text)
            elif isinstance(event, ToolCalls):
                calls[event.index] = event.calls
            elif isinstance(event, ChoiceEnd):
                choice = self.generation.choices[event.index]
                answers[event.index] = Answer(
                    "".join(texts[event.index]),
                    calls[event.index],
                    choice.logprobs,
                    event.reason,
                    event.finish,
                )
        return [a for a in answers if a is not None]

    def usage(self) -> Usage:
        """Token counts over all choices so far."""
        return Usage(*self.generation.usage_counts())

    def cancel(self) -> None:
        """Stop every choice."""
        self.generation.cancel()


async def start(request: Request, pool: EnginePool, ask: Ask) -> Run:
    """Render and tokenize the prompt off the event loop, then queue the generation."""
    settings: ServerSettings = request.app.state.settings
    engine = pool.get(ask.model)
    params = ask.params
    schema = calls_schema(ask.tools) if ask.tools.forced else ask.schema
    if schema is not None:
        params = replace(params, json_schema=_schema_text(schema))
    if ask.messages is not None:
        chars = sum(len(str(m.get("content") or "")) for m in ask.messages)
        check_prompt_size(len(ask.messages), chars, settings, "messages")
        prompt = await asyncio.to_thread(render_chat, engine, ask.messages, ask.tools)
        logged: str | list[dict[str, Any]] = ask.messages
    else:
        text = ask.text or ""
        check_prompt_size(1, len(text), settings, "prompt")
        prompt = await asyncio.to_thread(engine.text_prompt, text)
        logged = text
    origin = Origin(ask.endpoint, logged, params, ask.request_id)
    metrics = request.app.state.metrics
    generation = await Generation.start(engine, prompt, params, ask.n, metrics, request, origin)
    return Run(ask, engine, generation)

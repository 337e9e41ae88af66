"""Anthropic Messages API on the one serving path."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from models.engine import Finish
from models.engine.pool import EnginePool
from server.errors import as_api_error
from server.protocol.anthropic import (
    MessageOut,
    MessagesRequest,
    MessageUsage,
    StopReason,
    TextBlock,
    TextOut,
    ToolResultBlock,
    ToolUseBlock,
    ToolUseOut,
)
from server.protocol.common import new_id
from server.serving import run as serving
from server.serving.sse import event_stream, sse
from server.serving.tools import FunctionSpec, ToolUse

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def _messages(body: MessagesRequest) -> list[dict[str, Any]]:
    """The conversation as chat messages; tool_use and tool_result blocks as tool turns."""
    messages: list[dict[str, Any]] = []
    if body.system:
        system = body.system
        prompt = system if isinstance(system, str) else "".join(b.text for b in system)
        messages.append({"role": "system", "content": prompt})
    for message in body.messages:
        if isinstance(message.content, str):
            messages.append({"role": message.role, "content": message.content})
            continue
        text: list[str] = []
        calls = []
        for block in message.content:
            if isinstance(block, TextBlock):
                text.append(block.text)
            elif isinstance(block, ToolUseBlock):
                function = {"name": block.name, "arguments": json.dumps(block.input)}
                calls.append({"id": block.id, "type": "function", "function": function})
            elif isinstance(block, ToolResultBlock):
                result = block.text()
                tool_id = block.tool_use_id
                messages.append({"role": "tool", "content": result, "tool_call_id": tool_id})
        if text or calls:
            turn: dict[str, Any] = {"role": message.role, "content": "".join(text)}
            if calls:
                turn["tool_calls"] = calls
            messages.append(turn)
    return messages


def tool_use(body: MessagesRequest) -> ToolUse:
    """The tools of a request and how they are to be used."""
    if not body.tools:
        return ToolUse()
    functions = tuple(FunctionSpec(t.name, t.description, t.input_schema) for t in body.tools)
    choice = body.tool_choice
    if choice is None or choice.type == "auto":
        parallel = not (choice and choice.disable_parallel_tool_use)
        return ToolUse(functions, "auto", None, parallel)
    if choice.type == "none":
        return ToolUse(functions, "none")
    if choice.type == "tool":
        return ToolUse(functions, "named", choice.name, False)
    return ToolUse(functions, "required", None, not choice.disable_parallel_tool_use)


def ask_of(body: MessagesRequest, request_id: str) -> serving.Ask:
    """The dialect-neutral form of a messages request."""
    return serving.Ask(
        endpoint="messages",
        request_id=request_id,
        model=body.model,
        params=body.to_params(),
        messages=_messages(body),
        tools=tool_use(body),
    )


def _stop_reason(reason: str, finish: Finish | None) -> tuple[StopReason, str | None]:
    stop_sequence = finish.stop_sequence if finish is not None else None
    if reason == "tool_calls":
        return "tool_use", None
    if reason == "length":
        return "max_tokens", None
    if stop_sequence:
        return "stop_sequence", stop_sequence
    return "end_turn", None


def _tool_use(call: serving.Call) -> ToolUseOut:
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError:
        arguments = {}
    if not isinstance(arguments, dict):
        arguments = {"value": arguments}
    return ToolUseOut(id=f"toolu_{call.id.removeprefix('call_')}", name=call.name, input=arguments)


def _usage(usage: serving.Usage) -> MessageUsage:
    return MessageUsage(
        input_tokens=usage.prompt - usage.cached,
        output_tokens=usage.completion,
        cache_read_input_tokens=usage.cached,
    )


def to_message(run: serving.Run, answer: serving.Answer, request_id: str) -> MessageOut:
    """The whole answer as a message object."""
    content: list[TextOut | ToolUseOut] = []
    if answer.text:
        content.append(TextOut(text=answer.text))
    content.extend(_tool_use(c) for c in answer.calls)
    reason, sequence = _stop_reason(answer.reason, answer.finish)
    return MessageOut(
        id=request_id,
        model=run.model_id,
        content=content,
        stop_reason=reason,
        stop_sequence=sequence,
        usage=_usage(run.usage()),
    )


def event(kind: str, **data: Any) -> str:
    """One named Messages stream event."""
    return sse({"type": kind, **data}, event=kind)


async def _frames(run: serving.Run, request_id: str, keepalive_s: float) -> AsyncIterator[str]:
    """message_start, content blocks (text deltas, tool_use input JSON), message_delta, stop."""
    start = MessageOut(
        id=request_id,
        model=run.model_id,
        content=[],
        stop_reason=None,
        usage=MessageUsage(input_tokens=0, output_tokens=0),
    )
    yield event("message_start", message=start.model_dump())
    block = -1
    text_open = False
    reason: str = "end_turn"
    sequence: str | None = None
    async for item in run.events(keepalive_s):
        if item is None:
            yield event("ping")
        elif isinstance(item, serving.TextDelta) and item.text:
            if not text_open:
                block, text_open = block + 1, True
                yield event(
                    "content_block_start", index=block, content_block={"type": "text", "text": ""}
                )
            delta = {"type": "text_delta", "text": item.text}
            yield event("content_block_delta", index=block, delta=delta)
        elif isinstance(item, serving.ToolCalls):
            if text_open:
                yield event("content_block_stop", index=block)
                text_open = False
            for call in item.calls:
                block += 1
                use = _tool_use(call)
                opening = {**use.model_dump(), "input": {}}
                yield event("content_block_start", index=block, content_block=opening)
                delta = {"type": "input_json_delta", "partial_json": json.dumps(use.input)}
                yield event("content_block_delta", index=block, delta=delta)
                yield event("content_block_stop", index=block)
        elif isinstance(item, serving.ChoiceEnd):
            reason, sequence = _stop_reason(item.reason, item.finish)
    if text_open:
        yield event("content_block_stop", index=block)
    usage = _usage(run.usage()).model_dump()
    ending: dict[str, str | None] = {"stop_reason": reason, "stop_sequence": sequence}
    yield event("message_delta", delta=ending, usage=usage)
    yield event("message_stop")


def error_event(exc: Exception) -> str:
    """An error inside a stream, as Anthropic clients read it."""
    api = as_api_error(exc)
    kind = _ERROR_TYPES.get(api.status, "api_error")
    return event("error", error={"type": kind, "message": api.message})


async def create_message(
    body: MessagesRequest, request: Request, pool: EnginePool
) -> MessageOut | StreamingResponse:
    """Serve one messages request, whole or streamed."""
    request_id = new_id("msg").replace("-", "_")
    run = await serving.start(request, pool, ask_of(body, request_id))
    if not body.stream:
        (answer,) = await run.collect()
        return to_message(run, answer, request_id)
    keepalive = request.app.state.settings.sse_keepalive
    return event_stream(run, _frames(run, request_id, keepalive), error_event)

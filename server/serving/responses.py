"""OpenAI Responses API on the one serving path (stateless: the client sends the conversation)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from models.engine.pool import EnginePool
from server.errors import as_api_error
from server.protocol.common import new_id, now
from server.protocol.responses import (
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionChoice,
    IncompleteDetails,
    InputTokensDetails,
    OutputFunctionCall,
    OutputMessage,
    OutputText,
    Response,
    ResponseRequest,
    ResponseUsage,
)
from server.serving import run as serving
from server.serving.sse import KEEPALIVE, event_stream, sse
from server.serving.tools import FunctionSpec, ToolUse


def _messages(body: ResponseRequest) -> list[dict[str, Any]]:
    """The conversation as chat messages: instructions first, calls and outputs as tool turns."""
    messages: list[dict[str, Any]] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
    items = [body.input] if isinstance(body.input, str) else body.input
    for item in items:
        if isinstance(item, str):
            messages.append({"role": "user", "content": item})
        elif isinstance(item, FunctionCallItem):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItem):
            messages.append({"role": "tool", "content": item.output, "tool_call_id": item.call_id})
        else:
            role = "system" if item.role == "developer" else item.role
            messages.append({"role": role, "content": item.text()})
    return messages


def tool_use(body: ResponseRequest) -> ToolUse:
    """The tools of a request and how they are to be used."""
    if not body.tools:
        return ToolUse()
    functions = tuple(FunctionSpec(t.name, t.description, t.parameters) for t in body.tools)
    choice = body.tool_choice or "auto"
    if isinstance(choice, FunctionChoice):
        return ToolUse(functions, "named", choice.name, False)
    return ToolUse(functions, choice, None, body.parallel_tool_calls)


def ask_of(body: ResponseRequest, request_id: str) -> serving.Ask:
    """The dialect-neutral form of a responses request."""
    return serving.Ask(
        endpoint="responses",
        request_id=request_id,
        model=body.model,
        params=body.to_params(),
        messages=_messages(body),
        schema=body.text.format.output_schema() if body.text else None,
        tools=tool_use(body),
    )


def _usage(usage: serving.Usage) -> ResponseUsage:
    return ResponseUsage(
        input_tokens=usage.prompt,
        input_tokens_details=InputTokensDetails(cached_tokens=usage.cached),
        output_tokens=usage.completion,
        total_tokens=usage.prompt + usage.completion,
    )


def _function_call(call: serving.Call, status: str = "completed") -> OutputFunctionCall:
    return OutputFunctionCall(
        id=f"fc_{call.id.removeprefix('call_')}",
        call_id=call.id,
        name=call.name,
        arguments=call.arguments,
        status=status,  # type: ignore[arg-type]
    )


class ResponseBuilder:
    """The response object of one request, in progress or finished."""

    def __init__(self, body: ResponseRequest, model: str, request_id: str) -> None:
        self.body = body
        self.model = model
        self.id = request_id
        self.created = now()
        self.message_id = new_id("msg").replace("-", "_")

    def build(
        self,
        status: str,
        output: list[OutputMessage | OutputFunctionCall],
        usage: serving.Usage | None = None,
    ) -> Response:
        """The response with this status and output."""
        body = self.body
        text_format = body.text.format if body.text else None
        return Response(
            id=self.id,
            created_at=self.created,
            status=status,  # type: ignore[arg-type]
            incomplete_details=(
                IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None
            ),
            instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            model=self.model,
            output=output,
            parallel_tool_calls=body.parallel_tool_calls,
            temperature=body.temperature,
            text={
                "format": text_format.model_dump(by_alias=True, exclude_none=True)
                if text_format
                else {"type": "text"}
            },
            tool_choice=(
                body.tool_choice.model_dump()
                if isinstance(body.tool_choice, FunctionChoice)
                else body.tool_choice or "auto"
            ),
            tools=[t.model_dump() for t in body.tools or []],
            top_p=body.top_p,
            usage=_usage(usage) if usage else None,
            user=body.user,
        )

    def message(self, text: str, status: str = "completed") -> OutputMessage:
        """The assistant message item."""
        content = [OutputText(text=text)] if status != "in_progress" else []
        return OutputMessage(id=self.message_id, status=status, content=content)  # type: ignore[arg-type]

    def finished(self, answer: serving.Answer, usage: serving.Usage) -> Response:
        """The complete response."""
        output: list[OutputMessage | OutputFunctionCall] = []
        status = "incomplete" if answer.reason == "length" else "completed"
        if answer.text or not answer.calls:
            output.append(self.message(answer.text, status))
        output.extend(_function_call(c) for c in answer.calls)
        return self.build(status, output, usage)


class _Events:
    """The named events of a streamed response, numbered in order."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, kind: str, **data: Any) -> str:
        """One event frame."""
        payload = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return sse(payload, event=kind)


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump()
    return dumped


async def _frames(
    run: serving.Run, builder: ResponseBuilder, events: _Events, keepalive_s: float
) -> AsyncIterator[str]:
    """created, in_progress, the message's text deltas, function calls, completed."""
    yield events("response.created", response=_dump(builder.build("in_progress", [])))
    yield events("response.in_progress", response=_dump(builder.build("in_progress", [])))
    text: list[str] = []
    opened = False
    message_index = 0
    part = {"item_id": builder.message_id, "output_index": 0, "content_index": 0}

    def open_message() -> list[str]:
        item = _dump(builder.message("", "in_progress"))
        empty = _dump(OutputText(text=""))
        return [
            events("response.output_item.added", output_index=0, item=item),
            events("response.content_part.added", **part, part=empty),
        ]

    def close_message(status: str) -> list[str]:
        full = "".join(text)
        return [
            events("response.output_text.done", **part, text=full, logprobs=[]),
            events("response.content_part.done", **part, part=_dump(OutputText(text=full))),
            events(
                "response.output_item.done",
                output_index=0,
                item=_dump(builder.message(full, status)),
            ),
        ]

    answer = serving.Answer("", [], [], "stop", None)
    async for event in run.events(keepalive_s):
        if event is None:
            yield KEEPALIVE
        elif isinstance(event, serving.TextDelta) and event.text:
            if not opened:
                opened = True
                for frame in open_message():
                    yield frame
            text.append(event.text)
            yield events("response.output_text.delta", **part, delta=event.text, logprobs=[])
        elif isinstance(event, serving.ToolCalls):
            answer.calls = event.calls
        elif isinstance(event, serving.ChoiceEnd):
            answer.reason = event.reason
    status = "incomplete" if answer.reason == "length" else "completed"
    if opened or not answer.calls:
        if not opened:
            for frame in open_message():
                yield frame
        for frame in close_message(status):
            yield frame
        message_index = 1
    for offset, call in enumerate(answer.calls):
        index = message_index + offset
        item = _function_call(call)
        yield events(
            "response.output_item.added",
            output_index=index,
            item={**_dump(item), "arguments": "", "status": "in_progress"},
        )
        ids = {"item_id": item.id, "output_index": index}
        yield events("response.function_call_arguments.delta", **ids, delta=call.arguments)
        yield events("response.function_call_arguments.done", **ids, arguments=call.arguments)
        yield events("response.output_item.done", output_index=index, item=_dump(item))
    answer.text = "".join(text)
    final = builder.finished(answer, run.usage())
    kind = "response.incomplete" if status == "incomplete" else "response.completed"
    yield events(kind, response=_dump(final))


def _error_frame(events: _Events, exc: Exception) -> str:
    api = as_api_error(exc)
    return events("error", code=api.code, message=api.message, param=api.param)


async def create_response(
    body: ResponseRequest, request: Request, pool: EnginePool
) -> Response | StreamingResponse:
    """Serve one responses request, whole or streamed."""
    request_id = new_id("resp").replace("-", "_")
    run = await serving.start(request, pool, ask_of(body, request_id))
    builder = ResponseBuilder(body, run.model_id, request_id)
    if not body.stream:
        (answer,) = await run.collect()
        return builder.finished(answer, run.usage())
    events = _Events()
    keepalive = request.app.state.settings.sse_keepalive
    frames = _frames(run, builder, events, keepalive)
    return event_stream(run, frames, lambda exc: _error_frame(events, exc))

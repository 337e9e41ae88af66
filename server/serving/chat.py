"""OpenAI chat completions on the one serving path: request → Ask, events → objects and chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from models.engine.pool import EnginePool
from server.errors import error_body
from server.protocol.chat import (
    AssistantMessage,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatDelta,
    ChoiceLogprobs,
    ChunkChoice,
    FunctionCallDelta,
    FunctionCallOut,
    NamedToolChoice,
    TokenLogprob,
    ToolCallDelta,
    ToolCallOut,
    TopLogprob,
)
from server.protocol.common import new_id, now
from server.protocol.openai import PromptTokensDetails, Usage
from server.serving import run as serving
from server.serving.sse import KEEPALIVE, event_stream, sse
from server.serving.tools import FunctionSpec, ToolUse


def tool_use(body: ChatCompletionRequest) -> ToolUse:
    """The tools of a chat request and how they are to be used."""
    if not body.tools:
        return ToolUse()
    functions = tuple(
        FunctionSpec(t.function.name, t.function.description, t.function.parameters)
        for t in body.tools
    )
    choice = body.tool_choice or "auto"
    if isinstance(choice, NamedToolChoice):
        return ToolUse(functions, "named", choice.function.name, False)
    return ToolUse(functions, choice, None, body.parallel_tool_calls)


def ask_of(body: ChatCompletionRequest, request_id: str) -> serving.Ask:
    """The dialect-neutral form of a chat request."""
    schema = body.response_format.output_schema() if body.response_format else None
    return serving.Ask(
        endpoint="chat.completions",
        request_id=request_id,
        model=body.model,
        params=body.to_params(),
        messages=body.template_messages(),
        n=body.n,
        schema=schema,
        tools=tool_use(body),
    )


def usage_of(usage: serving.Usage) -> Usage:
    """The OpenAI usage object."""
    return Usage(
        prompt_tokens=usage.prompt,
        completion_tokens=usage.completion,
        total_tokens=usage.prompt + usage.completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached),
    )


def token_logprobs(entries: Iterable[Any]) -> list[TokenLogprob]:
    """The engine's per-token logprobs in the OpenAI chat shape."""
    return [
        TokenLogprob(
            token=e.token,
            logprob=e.logprob,
            bytes=list(e.bytes),
            top_logprobs=[TopLogprob(token=t, logprob=lp, bytes=list(b)) for t, b, lp in e.top],
        )
        for e in entries
    ]


def _tool_calls(calls: list[serving.Call]) -> list[ToolCallOut] | None:
    if not calls:
        return None
    return [
        ToolCallOut(id=c.id, function=FunctionCallOut(name=c.name, arguments=c.arguments))
        for c in calls
    ]


def to_completion(
    run: serving.Run, answers: list[serving.Answer], body: ChatCompletionRequest, request_id: str
) -> ChatCompletion:
    """The whole answer as a chat.completion object."""
    choices = [
        ChatChoice(
            index=i,
            message=AssistantMessage(
                content=None if a.calls and not a.text else a.text,
                tool_calls=_tool_calls(a.calls),
            ),
            finish_reason=a.reason,  # type: ignore[arg-type]
            logprobs=ChoiceLogprobs(content=token_logprobs(a.logprobs)) if body.logprobs else None,
        )
        for i, a in enumerate(answers)
    ]
    return ChatCompletion(
        id=request_id,
        created=now(),
        model=run.model_id,
        choices=choices,
        usage=usage_of(run.usage()),
    )


class _Chunks:
    """Builds the chunks of one streamed chat completion."""

    def __init__(self, run: serving.Run, body: ChatCompletionRequest, request_id: str) -> None:
        self.run = run
        self.body = body
        self.id, self.created = request_id, now()
        self.with_usage = body.include_usage()

    def frame(self, choices: list[ChunkChoice], usage: Usage | None = None) -> str:
        """One chunk as an SSE frame: `usage: null` on every chunk when usage was asked for."""
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.run.model_id, choices=choices, usage=usage
        )
        data = chunk.model_dump(exclude_none=True)
        for choice in data["choices"]:
            choice.setdefault("finish_reason", None)
            choice.setdefault("logprobs", None)
        if self.with_usage:
            data.setdefault("usage", None)
        return sse(data)

    def text(self, event: serving.TextDelta) -> str:
        """A content delta (with logprobs when asked)."""
        logprobs = None
        if self.body.logprobs:
            logprobs = ChoiceLogprobs(content=token_logprobs(event.logprobs))
        delta = ChatDelta(content=event.text)
        return self.frame([ChunkChoice(index=event.index, delta=delta, logprobs=logprobs)])

    def calls(self, event: serving.ToolCalls) -> Iterable[str]:
        """Each call as the OpenAI deltas: id and name first, then its arguments."""
        for number, call in enumerate(event.calls):
            opening = ToolCallDelta(
                index=number,
                id=call.id,
                type="function",
                function=FunctionCallDelta(name=call.name, arguments=""),
            )
            arguments = ToolCallDelta(
                index=number, function=FunctionCallDelta(arguments=call.arguments)
            )
            for part in (opening, arguments):
                delta = ChatDelta(tool_calls=[part])
                yield self.frame([ChunkChoice(index=event.index, delta=delta)])

    async def frames(self, keepalive_s: float) -> AsyncIterator[str]:
        """Opening chunks, deltas, finish chunks, usage."""
        for index in range(self.body.n):
            opening = ChatDelta(role="assistant", content="")
            yield self.frame([ChunkChoice(index=index, delta=opening)])
        async for event in self.run.events(keepalive_s):
            if event is None:
                yield KEEPALIVE
            elif isinstance(event, serving.TextDelta):
                yield self.text(event)
            elif isinstance(event, serving.ToolCalls):
                for frame in self.calls(event):
                    yield frame
            else:
                end = ChunkChoice(index=event.index, delta=ChatDelta(), finish_reason=event.reason)  # type: ignore[arg-type]
                yield self.frame([end])
        if self.with_usage:
            yield self.frame([], usage_of(self.run.usage()))


async def chat_completion(
    body: ChatCompletionRequest, request: Request, pool: EnginePool
) -> ChatCompletion | StreamingResponse:
    """Serve one chat completion request, whole or streamed."""
    request_id = new_id("chatcmpl")
    run = await serving.start(request, pool, ask_of(body, request_id))
    if not body.stream:
        return to_completion(run, await run.collect(), body, request_id)
    keepalive = request.app.state.settings.sse_keepalive
    frames = _Chunks(run, body, request_id).frames(keepalive)
    return event_stream(run, frames, lambda exc: sse(error_body(exc)), sse("[DONE]"))

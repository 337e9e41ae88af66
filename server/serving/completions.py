"""OpenAI text completions on the one serving path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import StreamingResponse

from models.engine.pool import EnginePool
from server.errors import error_body
from server.protocol.common import new_id, now
from server.protocol.completions import (
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
)
from server.serving import run as serving
from server.serving.chat import usage_of
from server.serving.sse import KEEPALIVE, event_stream, sse


def ask_of(body: CompletionRequest, request_id: str) -> serving.Ask:
    """The dialect-neutral form of a completion request."""
    return serving.Ask(
        endpoint="completions",
        request_id=request_id,
        model=body.model,
        params=body.to_params(),
        text=body.prompt_text(),
        n=body.n,
    )


def legacy_logprobs(entries: Sequence[Any], offset: int) -> CompletionLogprobs:
    """The engine's per-token logprobs in the legacy completions shape."""
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry.token)
    return CompletionLogprobs(
        tokens=[e.token for e in entries],
        token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{t: lp for t, _, lp in e.top} for e in entries],
        text_offset=offsets,
    )


def _echo(body: CompletionRequest) -> str:
    return body.prompt_text() if body.echo else ""


async def _frames(
    run: serving.Run, body: CompletionRequest, request_id: str, keepalive_s: float
) -> AsyncIterator[str]:
    """Echo, a chunk per delta, a finish chunk per choice, usage."""
    head: dict[str, Any] = {"id": request_id, "created": now(), "model": run.model_id}
    offsets = [len(_echo(body))] * body.n

    def frame(choices: list[CompletionChoice], usage: Any = None) -> str:
        data = Completion(**head, choices=choices, usage=usage).model_dump()
        if not body.include_usage():
            data.pop("usage")
        return sse(data)

    if body.echo:
        for index in range(body.n):
            yield frame([CompletionChoice(index=index, text=_echo(body), finish_reason=None)])
    async for event in run.events(keepalive_s):
        if event is None:
            yield KEEPALIVE
        elif isinstance(event, serving.TextDelta):
            logprobs = None
            if body.logprobs is not None:
                logprobs = legacy_logprobs(event.logprobs, offsets[event.index])
            offsets[event.index] += len(event.text)
            choice = CompletionChoice(
                index=event.index, text=event.text, finish_reason=None, logprobs=logprobs
            )
            yield frame([choice])
        elif isinstance(event, serving.ChoiceEnd):
            reason: Literal["stop", "length"] = "length" if event.reason == "length" else "stop"
            yield frame([CompletionChoice(index=event.index, text="", finish_reason=reason)])
    if body.include_usage():
        yield frame([], usage_of(run.usage()))


async def completion(
    body: CompletionRequest, request: Request, pool: EnginePool
) -> Completion | StreamingResponse:
    """Serve one text completion request, whole or streamed."""
    request_id = new_id("cmpl")
    run = await serving.start(request, pool, ask_of(body, request_id))
    if body.stream:
        keepalive = request.app.state.settings.sse_keepalive
        frames = _frames(run, body, request_id, keepalive)
        return event_stream(run, frames, lambda exc: sse(error_body(exc)), sse("[DONE]"))
    answers = await run.collect()
    echo = _echo(body)
    choices = [
        CompletionChoice(
            index=i,
            text=echo + a.text,
            finish_reason="length" if a.reason == "length" else "stop",
            logprobs=None if body.logprobs is None else legacy_logprobs(a.logprobs, len(echo)),
        )
        for i, a in enumerate(answers)
    ]
    return Completion(
        id=request_id,
        created=now(),
        model=run.model_id,
        choices=choices,
        usage=usage_of(run.usage()),
    )

"""Runs n generations of one prompt on an engine; collects them or streams them as SSE.

Every generation is supervised: it ends with a clear error when its deadline passes, when the
engine stops making progress, and it is cancelled when the client goes away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import Request

from models.completions_log import CompletionEntry, CompletionsLog
from models.engine import Engine, Finish, GenerationParams, Piece, TokenStream
from server.errors import APIError
from server.metrics import Metrics
from server.settings import ServerSettings

WATCH_INTERVAL_S = 0.25


@dataclass
class Choice:
    """The accumulated result of one of the n generations."""

    text: list[str] = field(default_factory=list)
    logprobs: list[Any] = field(default_factory=list)  # the engine's TokenLogprob per token
    finish: Finish | None = None
    first_token_at: float | None = None
    last_piece_at: float | None = None


def check_limits(n: int, params: GenerationParams, settings: ServerSettings) -> None:
    """Refuse more choices, or more tokens, than the server allows per request."""
    limit = settings.max_tokens_limit
    if limit is not None and params.max_tokens is not None and params.max_tokens > limit:
        raise APIError(
            400,
            f"max_tokens is {params.max_tokens}; this server allows at most {limit}",
            param="max_tokens",
            code="max_tokens_too_big",
        )
    if n > settings.max_n:
        raise APIError(
            400,
            f"n is {n}; this server allows at most {settings.max_n}",
            param="n",
            code="n_too_big",
        )


def check_prompt_size(count: int, chars: int, settings: ServerSettings, param: str) -> None:
    """Refuse more messages, or more prompt text, than the server allows per request."""
    if count > settings.max_messages:
        raise APIError(
            400,
            f"{count} messages; this server allows at most {settings.max_messages}",
            param=param,
            code="too_many_messages",
        )
    if chars > settings.max_prompt_chars:
        raise APIError(
            400,
            f"the prompt has {chars} characters; this server allows at most "
            f"{settings.max_prompt_chars}",
            param=param,
            code="prompt_too_long",
        )


@dataclass(frozen=True)
class Origin:
    """What was asked, as the completions log records it."""

    endpoint: str  # chat.completions or completions
    prompt: str | list[dict[str, Any]]  # the prompt text, or the chat messages
    params: GenerationParams
    request_id: str


class Generation:
    """n streams of one prompt on one engine, with timing for the metrics."""

    def __init__(
        self,
        engine: Engine,
        streams: Sequence[TokenStream],
        metrics: Metrics,
        request: Request,
        timeout_s: float,
        watchdog_s: float,
        origin: Origin | None = None,
    ) -> None:
        self.engine = engine
        self.origin = origin
        self.completions_log: CompletionsLog | None = request.app.state.completions_log
        self.streams = streams
        self.metrics = metrics
        self.request = request
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout_s
        self.watchdog_s = watchdog_s
        self.choices = [Choice() for _ in streams]

    @classmethod
    async def start(
        cls,
        engine: Engine,
        prompt: list[int],
        params: GenerationParams,
        n: int,
        metrics: Metrics,
        request: Request,
        origin: Origin | None = None,
    ) -> Generation:
        """Submit n choices of one prompt (queue and context checks raise here)."""
        settings: ServerSettings = request.app.state.settings
        check_limits(n, params, settings)
        streams = await engine.submit(prompt, params, n)
        timeout, watchdog = settings.request_timeout, settings.watchdog_s
        return cls(engine, streams, metrics, request, timeout, watchdog, origin)

    def cancel(self) -> None:
        """Cancel every stream still running."""
        for stream in self.streams:
            stream.cancel()

    async def _supervise(self, stop_on_disconnect: bool) -> APIError:
        """Wait until the deadline passes, the engine stalls or (optionally) the client leaves."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if time.monotonic() > self.deadline:
                return APIError(
                    504,
                    "The request took longer than this server's request timeout.",
                    type="server_error",
                    code="request_timeout",
                )
            if self.engine.stalled_for() > self.watchdog_s:
                return APIError(
                    503,
                    f"The engine for {self.engine.model_id!r} has stopped making progress.",
                    type="server_error",
                    code="engine_stalled",
                )
            if stop_on_disconnect and await self.request.is_disconnected():
                return APIError(499, "client disconnected", code="client_disconnected")

    async def events(
        self, watch_disconnect: bool = False, keepalive_s: float | None = None
    ) -> AsyncIterator[tuple[int, Piece | Finish] | None]:
        """Events of all streams, merged, as (choice index, event); None when nothing happened
        for keepalive_s (a stream uses it to send a keep-alive comment)."""
        queue: asyncio.Queue[tuple[int, Piece | Finish] | APIError] = asyncio.Queue()

        async def pump(index: int, stream: TokenStream) -> None:
            async for event in stream:
                await queue.put((index, event))

        async def supervise() -> None:
            await queue.put(await self._supervise(watch_disconnect))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(self.streams)]
        tasks.append(asyncio.create_task(supervise()))
        try:
            remaining = len(self.streams)
            while remaining:
                try:
                    item = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield None
                    continue
                if isinstance(item, APIError):
                    raise item
                index, event = item
                self._record(index, event)
                if isinstance(event, Finish):
                    remaining -= 1
                    if event.reason == "error":
                        raise APIError(
                            500,
                            f"generation failed: {event.error}",
                            type="server_error",
                            code="engine_failure",
                        )
                yield index, event
        finally:
            self.cancel()
            for task in tasks:
                task.cancel()

    def _record(self, index: int, event: Piece | Finish) -> None:
        choice = self.choices[index]
        model = self.engine.model_id
        if isinstance(event, Piece):
            choice.text.append(event.text)
            choice.logprobs.extend(event.logprobs)
            now = time.perf_counter()
            if choice.last_piece_at is not None:
                self.metrics.itl.labels(model).observe(now - choice.last_piece_at)
            choice.last_piece_at = now
            if choice.first_token_at is None:
                choice.first_token_at = now
                self.metrics.ttft.labels(model).observe(choice.first_token_at - self.started)
            return
        choice.finish = event
        self.metrics.queue_time.labels(model).observe(event.queued_s)
        end = time.perf_counter()
        if event.reason in ("stop", "length"):
            self._log_choice(index, choice, event, end)
            self.metrics.e2e.labels(model).observe(end - self.started)
            if choice.first_token_at is not None and event.completion_tokens > 1:
                tpot = (end - choice.first_token_at) / (event.completion_tokens - 1)
                self.metrics.tpot.labels(model).observe(tpot)

    def _log_choice(self, index: int, choice: Choice, finish: Finish, end: float) -> None:
        """Append an answered choice to the completions log, when the server keeps one."""
        if self.completions_log is None or self.origin is None:
            return
        first = choice.first_token_at
        tpot = None
        if first is not None and finish.completion_tokens > 1:
            tpot = (end - first) / (finish.completion_tokens - 1)
        self.completions_log.record(
            CompletionEntry(
                model_id=self.engine.model_id,
                prompt=self.origin.prompt,
                answer="".join(choice.text),
                gguf_sha256=self.engine.file_sha256,
                sampling=asdict(self.origin.params),
                prompt_tokens=finish.prompt_tokens,
                completion_tokens=finish.completion_tokens,
                ttft_s=None if first is None else first - self.started,
                tpot_s=tpot,
                finish_reason=finish.reason,
                choice_index=index,
                request_id=self.origin.request_id,
                endpoint=self.origin.endpoint,
            )
        )

    def usage_counts(self) -> tuple[int, int, int]:
        """(prompt, completion, cached) tokens over all choices."""
        finishes = [c.finish for c in self.choices if c.finish is not None]
        if not finishes:
            return 0, 0, 0
        return (
            finishes[0].prompt_tokens,
            sum(f.completion_tokens for f in finishes),
            finishes[0].cached_tokens,
        )

"""Runs n generations of one prompt on an engine; collects them or streams them as SSE."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import Request

from models.engine import Engine, Finish, GenerationParams, Piece, TokenStream
from server.errors import APIError, sse_error
from server.metrics import Metrics

ChunkMaker = Callable[[int, str | None, str | None], dict[str, Any]]


@dataclass
class Choice:
    """The accumulated result of one of the n generations."""

    text: list[str] = field(default_factory=list)
    finish: Finish | None = None
    first_token_at: float | None = None


class Generation:
    """n streams of one prompt on one engine, with timing for the metrics."""

    def __init__(
        self, engine: Engine, prompt: list[int], params: GenerationParams, n: int, metrics: Metrics
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.started = time.perf_counter()
        self.streams: list[TokenStream] = []
        try:
            for i in range(n):
                seed = None if params.seed is None else params.seed + i
                self.streams.append(engine.submit(prompt, replace(params, seed=seed)))
        except Exception:
            self.cancel()
            raise
        self.choices = [Choice() for _ in range(n)]

    def cancel(self) -> None:
        """Cancel every stream still running."""
        for stream in self.streams:
            stream.cancel()

    async def events(self) -> AsyncIterator[tuple[int, Piece | Finish]]:
        """Events of all streams, merged, as (choice index, event)."""
        queue: asyncio.Queue[tuple[int, Piece | Finish]] = asyncio.Queue()

        async def pump(index: int, stream: TokenStream) -> None:
            async for event in stream:
                await queue.put((index, event))

        tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(self.streams)]
        try:
            remaining = len(tasks)
            while remaining:
                index, event = await queue.get()
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

    async def collect(self, request: Request) -> list[Choice]:
        """Run to the end; cancel if the client goes away meanwhile."""

        async def watch() -> None:
            while not await request.is_disconnected():
                await asyncio.sleep(0.25)
            self.cancel()

        watcher = asyncio.create_task(watch())
        try:
            async for _ in self.events():
                pass
        finally:
            watcher.cancel()
        return self.choices

    def _record(self, index: int, event: Piece | Finish) -> None:
        choice = self.choices[index]
        model = self.engine.model_id
        if isinstance(event, Piece):
            choice.text.append(event.text)
            if choice.first_token_at is None:
                choice.first_token_at = time.perf_counter()
                self.metrics.ttft.labels(model).observe(choice.first_token_at - self.started)
            return
        choice.finish = event
        end = time.perf_counter()
        if event.reason in ("stop", "length"):
            self.metrics.e2e.labels(model).observe(end - self.started)
            if choice.first_token_at is not None and event.completion_tokens > 1:
                tpot = (end - choice.first_token_at) / (event.completion_tokens - 1)
                self.metrics.tpot.labels(model).observe(tpot)

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


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def stream_events(
    generation: Generation,
    first_chunks: list[dict[str, Any]],
    make_chunk: ChunkMaker,
    usage_chunk: Callable[[], dict[str, Any]] | None,
) -> AsyncIterator[str]:
    """SSE body: opening chunks, a chunk per piece, a finish chunk per choice, usage, [DONE]."""
    try:
        for chunk in first_chunks:
            yield sse(chunk)
        async for index, event in generation.events():
            if isinstance(event, Piece):
                yield sse(make_chunk(index, event.text, None))
            elif event.reason in ("stop", "length"):
                yield sse(make_chunk(index, None, event.reason))
        if usage_chunk is not None:
            yield sse(usage_chunk())
    except Exception as exc:
        yield sse_error(exc)
    finally:
        generation.cancel()
    with contextlib.suppress(Exception):
        yield sse("[DONE]")

"""Server-sent events: frames, keep-alive comments, an error event, the closing marker."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from server.serving.run import Run

KEEPALIVE = ": keep-alive\n\n"  # a comment line: clients and proxies see the stream is alive


def sse(data: dict[str, Any] | str, event: str | None = None) -> str:
    """One server-sent event (optionally named)."""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return (f"event: {event}\n" if event else "") + f"data: {body}\n\n"


async def _guarded(
    run: Run,
    frames: AsyncIterator[str],
    on_error: Callable[[Exception], str],
    closing: str | None,
) -> AsyncIterator[str]:
    """The frames; an error after the stream started becomes one error event; then closing."""
    try:
        async for frame in frames:
            yield frame
    except Exception as exc:
        yield on_error(exc)
    finally:
        run.cancel()
    if closing is not None:
        with contextlib.suppress(Exception):
            yield closing


def event_stream(
    run: Run,
    frames: AsyncIterator[str],
    on_error: Callable[[Exception], str],
    closing: str | None = None,
) -> StreamingResponse:
    """A text/event-stream response of these frames (the slot is freed when it ends)."""
    return StreamingResponse(
        _guarded(run, frames, on_error, closing),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

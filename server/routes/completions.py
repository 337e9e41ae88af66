"""POST /v1/completions (text completion of one prompt)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from server.deps import MetricsDep, PoolDep
from server.generation import Generation, Origin, stream_events, text_prompt
from server.protocol import CompletionRequest, new_id, now, usage

router = APIRouter()


@router.post("/completions", response_model=None)
async def completions(
    body: CompletionRequest, request: Request, pool: PoolDep, metrics: MetricsDep
) -> dict[str, Any] | StreamingResponse:
    """Text completion, streamed as SSE or returned whole."""
    engine = pool.get(body.model)
    prompt_text = body.prompt_text()
    prompt = await text_prompt(engine, prompt_text, request)
    params, request_id = body.to_params(), new_id("cmpl")
    origin = Origin("completions", prompt_text, params, request_id)
    generation = await Generation.start(engine, prompt, params, body.n, metrics, request, origin)
    head = {"id": request_id, "created": now(), "model": engine.model_id}
    echo = prompt_text if body.echo else ""
    if not body.stream:
        choices = await generation.collect()
        return {
            **head,
            "object": "text_completion",
            "choices": [
                {
                    "index": i,
                    "text": echo + "".join(c.text),
                    "finish_reason": c.finish.reason if c.finish else None,
                    "logprobs": None,
                }
                for i, c in enumerate(choices)
            ],
            "usage": usage(*generation.usage_counts()),
        }

    def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        return {
            **head,
            "object": "text_completion",
            "choices": [
                {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}
            ],
        }

    def usage_chunk() -> dict[str, Any]:
        return {
            **head,
            "object": "text_completion",
            "choices": [],
            "usage": usage(*generation.usage_counts()),
        }

    opening = [chunk(i, echo, None) for i in range(body.n)] if echo else []
    return StreamingResponse(
        stream_events(generation, opening, chunk, usage_chunk if body.include_usage() else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from server.deps import MetricsDep, PoolDep
from server.generation import Generation, Origin, chat_prompt, stream_events
from server.protocol import ChatCompletionRequest, new_id, now, usage

router = APIRouter()


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, pool: PoolDep, metrics: MetricsDep
) -> dict[str, Any] | StreamingResponse:
    """Chat completion, streamed as SSE or returned whole."""
    engine = pool.get(body.model)
    messages = body.template_messages()
    prompt = await chat_prompt(engine, messages, request)
    params, request_id = body.to_params(), new_id("chatcmpl")
    origin = Origin("chat.completions", messages, params, request_id)
    generation = await Generation.start(engine, prompt, params, body.n, metrics, request, origin)
    head = {"id": request_id, "created": now(), "model": engine.model_id}
    if not body.stream:
        choices = await generation.collect()
        return {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": "".join(c.text)},
                    "finish_reason": c.finish.reason if c.finish else None,
                    "logprobs": None,
                }
                for i, c in enumerate(choices)
            ],
            "usage": usage(*generation.usage_counts()),
        }

    def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        delta = {} if text is None else {"content": text}
        return {
            **head,
            "object": "chat.completion.chunk",
            "choices": [
                {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            ],
        }

    opening = [
        {
            **head,
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None,
                    "logprobs": None,
                }
            ],
        }
        for i in range(body.n)
    ]

    def usage_chunk() -> dict[str, Any]:
        return {
            **head,
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": usage(*generation.usage_counts()),
        }

    return StreamingResponse(
        stream_events(generation, opening, chunk, usage_chunk if body.include_usage() else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

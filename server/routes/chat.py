"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.deps import PoolDep
from server.protocol.chat import ChatCompletion, ChatCompletionRequest
from server.serving.chat import chat_completion

router = APIRouter()


@router.post("/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request, pool: PoolDep) -> Any:
    """Chat completion: a chat.completion object, or chat.completion.chunk events when streamed."""
    return await chat_completion(body, request, pool)

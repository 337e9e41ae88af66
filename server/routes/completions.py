"""POST /v1/completions (text completion of one prompt)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.deps import PoolDep
from server.protocol.completions import Completion, CompletionRequest
from server.serving.completions import completion

router = APIRouter()


@router.post("/completions", response_model=Completion)
async def completions(body: CompletionRequest, request: Request, pool: PoolDep) -> Any:
    """Text completion: a text_completion object, or text_completion events when streamed."""
    return await completion(body, request, pool)

"""POST /v1/responses (OpenAI Responses API, stateless)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.deps import PoolDep
from server.protocol.responses import Response, ResponseRequest
from server.serving.responses import create_response

router = APIRouter()


@router.post("/responses", response_model=Response)
async def responses(body: ResponseRequest, request: Request, pool: PoolDep) -> Any:
    """A response object, or response.* events when streamed."""
    return await create_response(body, request, pool)

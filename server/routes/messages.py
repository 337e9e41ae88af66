"""POST /v1/messages (Anthropic Messages API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from server.deps import PoolDep
from server.protocol.anthropic import MessageOut, MessagesRequest
from server.serving.messages import create_message

router = APIRouter()


@router.post("/messages", response_model=MessageOut)
async def messages(body: MessagesRequest, request: Request, pool: PoolDep) -> Any:
    """A message object, or message_* and content_block_* events when streamed."""
    return await create_message(body, request, pool)

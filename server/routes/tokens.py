"""POST /tokenize and /detokenize."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.deps import PoolDep
from server.protocol.tokens import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from server.serving import tokens

router = APIRouter()


@router.post("/tokenize")
async def tokenize(body: TokenizeRequest, request: Request, pool: PoolDep) -> TokenizeResponse:
    """Token ids of a prompt, or of chat messages rendered with the model's template."""
    return await tokens.tokenize(body, request, pool)


@router.post("/detokenize")
async def detokenize(body: DetokenizeRequest, pool: PoolDep) -> DetokenizeResponse:
    """The text of token ids."""
    return await tokens.detokenize(body, pool)

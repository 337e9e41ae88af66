"""Tokenize and detokenize with a served model's own vocabulary and chat template."""

from __future__ import annotations

import asyncio

from fastapi import Request

from models.engine.pool import EnginePool
from server.protocol.tokens import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from server.serving.generation import check_prompt_size
from server.serving.run import render_chat
from server.serving.tools import ToolUse


async def tokenize(body: TokenizeRequest, request: Request, pool: EnginePool) -> TokenizeResponse:
    """The tokens a completion (prompt) or chat (messages) request would be prefilled with."""
    engine = pool.get(body.model)
    settings = request.app.state.settings
    if body.messages is not None:
        messages = body.template_messages()
        chars = sum(len(m["content"]) for m in messages)
        check_prompt_size(len(messages), chars, settings, "messages")
        tokens = await asyncio.to_thread(render_chat, engine, messages, ToolUse())
    else:
        text = body.prompt or ""
        check_prompt_size(1, len(text), settings, "prompt")
        tokens = await asyncio.to_thread(engine.text_prompt, text)
    return TokenizeResponse(count=len(tokens), max_model_len=engine.n_ctx, tokens=tokens)


async def detokenize(body: DetokenizeRequest, pool: EnginePool) -> DetokenizeResponse:
    """The text of token ids (400 naming `tokens` when an id is not in the vocabulary)."""
    engine = pool.get(body.model)
    return DetokenizeResponse(prompt=await asyncio.to_thread(engine.detokenize, body.tokens))

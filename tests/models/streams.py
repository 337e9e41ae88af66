"""Draining an engine's token stream in the engine tests."""

from __future__ import annotations

from models.engine import Finish, Piece, TokenStream


async def drain(stream: TokenStream) -> tuple[str, Finish]:
    """Drain one stream: its text and its Finish."""
    text = ""
    async for event in stream:
        if isinstance(event, Piece):
            text += event.text
        else:
            return text, event
    raise AssertionError("stream ended without a Finish")

"""POST /tokenize and /detokenize (as vLLM serves them)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from server.protocol.chat import ChatMessage
from server.protocol.common import StrictRequest, WireModel

MAX_DETOKENIZE = 1_000_000


class TokenizeRequest(StrictRequest):
    """A prompt, or chat messages rendered with the model's template."""

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_input(self) -> TokenizeRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give either prompt or messages")
        return self

    def template_messages(self) -> list[dict[str, Any]]:
        """Messages as the chat template expects them."""
        return [m.for_template() for m in self.messages or []]


class TokenizeResponse(WireModel):
    """The token ids, their count and the model's context."""

    count: int
    max_model_len: int
    tokens: list[int]


class DetokenizeRequest(StrictRequest):
    """Token ids to turn back into text."""

    model: str | None = None
    tokens: list[int] = Field(max_length=MAX_DETOKENIZE)


class DetokenizeResponse(WireModel):
    """The text of the tokens."""

    prompt: str

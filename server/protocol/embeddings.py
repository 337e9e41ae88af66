"""POST /v1/embeddings: request and response."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from server.protocol.common import StrictRequest, WireModel

MAX_INPUTS = 2048


class EmbeddingRequest(StrictRequest):
    """Text input only (token arrays are not accepted)."""

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, description="Accepted; an end-user id for your logs.")

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        items = value if isinstance(value, list) else [value]
        if any(not isinstance(item, str) for item in items):
            raise ValueError("only text is accepted: a string or a list of strings (no token ids)")
        return value

    @field_validator("input")
    @classmethod
    def _non_empty(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("give at least one string")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} strings per request")
        if any(not t for t in texts):
            raise ValueError("strings must not be empty")
        return value

    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


class Embedding(WireModel):
    """One embedding (a list of floats, or base64 of float32s)."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(WireModel):
    """Tokens read."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingList(WireModel):
    """The answer of POST /v1/embeddings."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage

"""OpenAI text completions: the request and the answer (also each streamed chunk)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from server.protocol.common import WireModel
from server.protocol.openai import MAX_TOP_LOGPROBS, SamplingRequest, Usage


class CompletionRequest(SamplingRequest):
    """POST /v1/completions (one prompt string)."""

    REFUSED: ClassVar[dict[str, str]] = {
        **SamplingRequest.REFUSED,
        "suffix": "insertion (fill in the middle) is not supported",
    }

    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1, le=1, description="Only 1 is supported.")
    logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt string is supported per request")
        return value

    @model_validator(mode="after")
    def _no_echoed_logprobs(self) -> CompletionRequest:
        if self.echo and self.logprobs is not None:
            raise ValueError("logprobs with echo: the prompt's logprobs are not computed")
        return self

    def top_logprobs_count(self) -> int | None:
        """Alternatives per token (logprobs is that count here)."""
        return self.logprobs

    def prompt_text(self) -> str:
        """The single prompt."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class CompletionLogprobs(WireModel):
    """logprobs of a text completion choice, in the legacy shape."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(WireModel):
    """One choice of a text completion (also a chunk's choice)."""

    index: int
    text: str
    finish_reason: Literal["stop", "length"] | None
    logprobs: CompletionLogprobs | None = None


class Completion(WireModel):
    """The answer of POST /v1/completions (and each streamed chunk)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None

"""OpenAI protocol models: requests convert themselves into engine parameters."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.engine import GenerationParams
from models.engine.grammar import JSON_OBJECT_SCHEMA, canonical_schema

MAX_N = 64  # hard ceiling; the served limit is the --max-n setting


class TextPart(BaseModel):
    """A text part of a multi-part message."""

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat message; text content only."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's content as plain text."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class JsonSchemaFormat(BaseModel):
    """The `json_schema` member of response_format."""

    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(BaseModel):
    """response_format: text, json_object or json_schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a 'json_schema' object")
        return self

    def schema_text(self) -> str | None:
        """The JSON Schema (canonical text) the output must match, if any."""
        if self.type == "json_object":
            return JSON_OBJECT_SCHEMA
        if self.type == "json_schema" and self.json_schema is not None:
            return canonical_schema(self.json_schema.schema_)
        return None


class StreamOptions(BaseModel):
    """stream_options."""

    include_usage: bool = False


class SamplingRequest(BaseModel):
    """Fields shared by chat and text completions."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(default=None, description="Model id; the default model if omitted.")
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="Extension: keep the k likeliest tokens.")
    min_p: float = Field(default=0.0, ge=0.0, le=1.0, description="Extension: min-p sampling.")
    repeat_penalty: float = Field(default=1.0, gt=0.0, le=2.0, description="Extension.")
    seed: int | None = None
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool | int | None = None
    logit_bias: dict[str, float] | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    @model_validator(mode="after")
    def _unsupported(self) -> SamplingRequest:
        if self.logprobs:
            raise ValueError("logprobs are not supported by this server")
        if self.logit_bias:
            raise ValueError("logit_bias is not supported by this server")
        return self

    def token_limit(self) -> int | None:
        """The requested output token limit."""
        return self.max_tokens

    def stop_strings(self) -> tuple[str, ...]:
        """Stop sequences as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def schema_text(self) -> str | None:
        """The JSON Schema the output must match, if any."""
        return None

    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    def to_params(self) -> GenerationParams:
        """The engine parameters this request asks for."""
        return GenerationParams(
            max_tokens=self.token_limit(),
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            seed=self.seed,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            repeat_penalty=self.repeat_penalty,
            stop=self.stop_strings(),
            json_schema=self.schema_text(),
        )


class ChatCompletionRequest(SamplingRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _no_tools(self) -> ChatCompletionRequest:
        if self.tools:
            raise ValueError("tools / function calling are not supported by this server")
        return self

    def token_limit(self) -> int | None:
        """max_completion_tokens wins over the older max_tokens."""
        return self.max_completion_tokens or self.max_tokens

    def schema_text(self) -> str | None:
        """The JSON Schema of response_format, if any."""
        return self.response_format.schema_text() if self.response_format else None

    def template_messages(self) -> list[dict[str, Any]]:
        """Messages as the chat template expects them."""
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in self.messages
        ]


class CompletionRequest(SamplingRequest):
    """POST /v1/completions (one prompt string)."""

    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=1)
    echo: bool = False
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt string is supported per request")
        return value

    @model_validator(mode="after")
    def _no_suffix(self) -> CompletionRequest:
        if self.suffix:
            raise ValueError("suffix (insertion) is not supported by this server")
        return self

    def prompt_text(self) -> str:
        """The single prompt."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix time in seconds."""
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    """The usage object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


class PredictRequest(BaseModel):
    """A batch of records to score; each record is checked against the predictor's schema."""

    inputs: list[Any] = Field(description="One object of features per record.")


MAX_INPUTS = 2048
MAX_FEEDBACK = 1000


class FeedbackItem(BaseModel):
    """The true label of one served prediction."""

    id: str = Field(min_length=1, max_length=64, description="predictions[i].id as served.")
    label: str = Field(description="The true class; one of the predictor's classes.")


class FeedbackRequest(BaseModel):
    """POST /v1/predict/{name}/feedback: true labels for served predictions (all or none stored)."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK)


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings: text input only (token arrays are not accepted)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

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

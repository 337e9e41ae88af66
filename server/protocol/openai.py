"""OpenAI shared wire models: sampling fields, response format, usage, models list."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from models.engine import GenerationParams
from server.protocol.common import StrictRequest, WireModel, refuse

MAX_N = 64  # hard ceiling; the served limit is the --max-n setting
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class JsonSchemaFormat(StrictRequest):
    """The `json_schema` member of response_format."""

    name: str = "response"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(StrictRequest):
    """response_format: text, json_object or json_schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs a 'json_schema' object")
        return self

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON Schema the output must match, if any."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.schema_
        return None


class StreamOptions(StrictRequest):
    """stream_options."""

    include_usage: bool = False


class SamplingRequest(StrictRequest):
    """Fields shared by chat and text completions."""

    REFUSED: ClassVar[dict[str, str]] = {
        "logit_bias": "token biases are not implemented",
        "metadata": "it is kept with stored completions, and this server stores none",
        "store": "this server stores no completions (send store: false or leave it out)",
    }

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
    user: str | None = Field(default=None, description="Accepted; an end-user id for your logs.")
    service_tier: Literal["auto", "default"] | None = Field(
        default=None, description="Accepted: every request runs on the one tier there is."
    )
    logit_bias: dict[str, float] | None = Field(default=None, description="Refused when set.")
    metadata: dict[str, str] | None = Field(default=None, description="Refused when set.")
    store: bool | None = Field(default=None, description="Refused when true.")

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    @model_validator(mode="after")
    def _refused(self) -> SamplingRequest:
        refuse(self.__dict__, self.REFUSED)
        return self

    def token_limit(self) -> int | None:
        """The requested output token limit."""
        return self.max_tokens

    def stop_strings(self) -> tuple[str, ...]:
        """Stop sequences as a tuple."""
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    def top_logprobs_count(self) -> int | None:
        """How many alternatives to report per token (None: no logprobs)."""
        return None

    def to_params(self) -> GenerationParams:
        """The engine parameters this request asks for (constraints are added by serving)."""
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
            logprobs=self.top_logprobs_count(),
        )


class PromptTokensDetails(WireModel):
    """Where the prompt tokens came from."""

    cached_tokens: int = 0


class Usage(WireModel):
    """Token counts of a request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class ModelCard(WireModel):
    """A served model (aliases are listed as models too)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "myllama"
    max_model_len: int = Field(description="Context per request, in tokens.")
    meta: dict[str, Any] = Field(description="The engine's facts: file, SHA-256, slots, ...")


class ModelList(WireModel):
    """GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]

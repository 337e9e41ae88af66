"""OpenAI chat and text completions: requests, responses, chunks, tools and logprobs."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from models.engine import GenerationParams
from server.protocol.common import StrictRequest, WireModel, refuse

MAX_N = 64  # hard ceiling; the served limit is the --max-n setting
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"


class TextPart(StrictRequest):
    """A text part of a multi-part message (images, audio and files are refused)."""

    type: Literal["text"]
    text: str


class FunctionCall(StrictRequest):
    """The function of a tool call: its name and arguments as JSON text."""

    name: str
    arguments: str


class ToolCall(StrictRequest):
    """A tool call the assistant made."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(StrictRequest):
    """One chat message; text content only."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def text(self) -> str:
        """The message's content as plain text."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""

    def for_template(self) -> dict[str, Any]:
        """The message as chat templates expect it."""
        message: dict[str, Any] = {
            "role": "system" if self.role == "developer" else self.role,
            "content": self.text(),
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            message["name"] = self.name
        return message


class FunctionDefinition(StrictRequest):
    """A function the model may call."""

    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None


class Tool(StrictRequest):
    """A tool: only functions."""

    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(StrictRequest):
    """The function named by tool_choice."""

    name: str


class NamedToolChoice(StrictRequest):
    """tool_choice naming one function."""

    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


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


class ChatCompletionRequest(SamplingRequest):
    """POST /v1/chat/completions."""

    REFUSED: ClassVar[dict[str, str]] = {
        **SamplingRequest.REFUSED,
        "audio": "audio output is not supported",
        "prediction": "predicted outputs are not supported",
        "web_search_options": "there is no web search",
        "reasoning_effort": "the served models do not reason in a separate channel",
        "verbosity": "not supported",
    }

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    functions: list[FunctionDefinition] | None = Field(
        default=None, max_length=MAX_TOOLS, description="Deprecated: mapped onto tools."
    )
    function_call: Literal["none", "auto"] | NamedFunction | None = Field(
        default=None, description="Deprecated: mapped onto tool_choice."
    )
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    modalities: list[Literal["text"]] | None = None
    prompt_cache_key: str | None = Field(
        default=None, description="Accepted: prompt prefixes are cached automatically."
    )
    safety_identifier: str | None = Field(default=None, description="Accepted.")
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None

    @model_validator(mode="after")
    def _tools_consistent(self) -> ChatCompletionRequest:
        if self.functions is not None:
            if self.tools is not None:
                raise ValueError("give tools or the deprecated functions, not both")
            self.tools = [Tool(type="function", function=f) for f in self.functions]
        if self.function_call is not None:
            if self.tool_choice is not None:
                raise ValueError("give tool_choice or the deprecated function_call, not both")
            call = self.function_call
            self.tool_choice = (
                call
                if isinstance(call, str)
                else NamedToolChoice(type="function", function=NamedFunction(name=call.name))
            )
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    f"tool_choice names {self.tool_choice.function.name!r}, which is not in tools"
                )
        if self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        return self

    def token_limit(self) -> int | None:
        """max_completion_tokens wins over the older max_tokens."""
        return self.max_completion_tokens or self.max_tokens

    def top_logprobs_count(self) -> int | None:
        """Alternatives per token when logprobs is on."""
        return (self.top_logprobs or 0) if self.logprobs else None

    def template_messages(self) -> list[dict[str, Any]]:
        """Messages as the chat template expects them."""
        return [m.for_template() for m in self.messages]


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


# Responses


class PromptTokensDetails(WireModel):
    """Where the prompt tokens came from."""

    cached_tokens: int = 0


class Usage(WireModel):
    """Token counts of a request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)


class TopLogprob(WireModel):
    """One alternative token."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(WireModel):
    """One generated token with its alternatives."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(WireModel):
    """logprobs of a chat choice."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class FunctionCallOut(WireModel):
    """A function call in an answer."""

    name: str
    arguments: str


class ToolCallOut(WireModel):
    """A tool call in an answer."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessage(WireModel):
    """The assistant's answer."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ChatChoice(WireModel):
    """One choice of a chat completion."""

    index: int
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(WireModel):
    """The answer of POST /v1/chat/completions (stream: false)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class FunctionCallDelta(WireModel):
    """A piece of a streamed function call."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(WireModel):
    """A piece of a streamed tool call."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


class ChatDelta(WireModel):
    """What a chunk adds to a choice."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(WireModel):
    """One choice's part of a chunk."""

    index: int
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(WireModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


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

"""OpenAI chat completions: messages, tools, the request, the answer and its chunks."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from server.protocol.common import StrictRequest, WireModel
from server.protocol.openai import (
    MAX_TOOLS,
    MAX_TOP_LOGPROBS,
    TOOL_NAME,
    ResponseFormat,
    SamplingRequest,
    Usage,
)


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

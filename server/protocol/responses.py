"""OpenAI Responses API (stateless): the request, input items, the response object."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from models.engine import GenerationParams
from server.protocol.common import StrictRequest, WireModel, refuse
from server.protocol.openai import MAX_TOOLS, TOOL_NAME


class InputText(StrictRequest):
    """A text part of an input message."""

    type: Literal["input_text", "output_text"]
    text: str
    annotations: list[Any] | None = None


class InputMessage(StrictRequest):
    """A message of the conversation."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputText]
    id: str | None = None
    status: str | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionCallItem(StrictRequest):
    """A function call the model made earlier."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(StrictRequest):
    """The result of a function call, sent back."""

    type: Literal["function_call_output"]
    call_id: str
    output: str
    id: str | None = None
    status: str | None = None


InputItem = InputMessage | FunctionCallItem | FunctionCallOutputItem


class FunctionTool(StrictRequest):
    """A function tool (the only tool type served)."""

    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    strict: bool | None = None


class FunctionChoice(StrictRequest):
    """tool_choice naming one function."""

    type: Literal["function"]
    name: str


class TextFormat(StrictRequest):
    """text.format: text, json_object or json_schema."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("format type 'json_schema' needs a 'schema'")
        return self

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON Schema the output must match, if any."""
        if self.type == "json_object":
            return {"type": "object"}
        return self.schema_ if self.type == "json_schema" else None


class TextConfig(StrictRequest):
    """The `text` member: the output format."""

    format: TextFormat = Field(default_factory=TextFormat)


class ResponseRequest(StrictRequest):
    """POST /v1/responses."""

    REFUSED: ClassVar[dict[str, str]] = {
        "previous_response_id": "this server is stateless: send the whole conversation in input",
        "conversation": "this server is stateless: send the whole conversation in input",
        "store": "this server stores no responses (send store: false or leave it out)",
        "background": "background responses are not supported",
        "reasoning": "the served models do not reason in a separate channel",
        "include": "no extra output data is available",
        "metadata": "it is kept with stored responses, and this server stores none",
        "top_logprobs": "logprobs are served on /v1/chat/completions",
        "prompt": "stored prompts are not supported",
    }

    model: str | None = None
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: Literal["none", "auto", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool = True
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stream: bool = False
    truncation: Literal["disabled"] | None = None
    user: str | None = Field(default=None, description="Accepted; an end-user id for your logs.")
    safety_identifier: str | None = Field(default=None, description="Accepted.")
    prompt_cache_key: str | None = Field(
        default=None, description="Accepted: prompt prefixes are cached automatically."
    )
    service_tier: Literal["auto", "default"] | None = None
    previous_response_id: str | None = None
    conversation: Any = None
    store: bool | None = None
    background: bool | None = None
    reasoning: dict[str, Any] | None = None
    include: list[str] | None = None
    metadata: dict[str, str] | None = None
    top_logprobs: int | None = None
    prompt: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ResponseRequest:
        refuse(self.__dict__, self.REFUSED)
        choice, names = self.tool_choice, {t.name for t in self.tools or []}
        if isinstance(choice, FunctionChoice) and choice.name not in names:
            raise ValueError(f"tool_choice names {choice.name!r}, which is not in tools")
        if self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs tools")
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input is empty")
        return self

    def to_params(self) -> GenerationParams:
        """The engine parameters this request asks for."""
        return GenerationParams(
            max_tokens=self.max_output_tokens, temperature=self.temperature, top_p=self.top_p
        )


# The response


class OutputText(WireModel):
    """Text the model wrote."""

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(WireModel):
    """The assistant's message."""

    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class OutputFunctionCall(WireModel):
    """A function call the model made."""

    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


class InputTokensDetails(WireModel):
    """Where input tokens came from."""

    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(WireModel):
    """What output tokens were."""

    reasoning_tokens: int = 0


class ResponseUsage(WireModel):
    """Token counts of a response."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class IncompleteDetails(WireModel):
    """Why a response is incomplete."""

    reason: Literal["max_output_tokens", "content_filter"]


class Response(WireModel):
    """The answer of POST /v1/responses (and the `response` of its stream events)."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    error: dict[str, Any] | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputMessage | OutputFunctionCall]
    parallel_tool_calls: bool
    previous_response_id: str | None = None
    store: bool = False
    temperature: float
    text: dict[str, Any]
    tool_choice: Any
    tools: list[dict[str, Any]]
    top_p: float
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

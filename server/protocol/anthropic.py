"""Anthropic Messages API: the request, content blocks, the message object."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from models.engine import GenerationParams
from server.protocol.common import StrictRequest, WireModel, refuse
from server.protocol.openai import MAX_TOOLS, TOOL_NAME


class TextBlock(StrictRequest):
    """A text block (cache_control is accepted: prompt prefixes are cached automatically)."""

    type: Literal["text"]
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None


class ToolUseBlock(StrictRequest):
    """A tool call the assistant made earlier."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None
    caller: dict[str, Any] | None = Field(default=None, description="Echoed back; unused.")
    toolset_name: str | None = Field(default=None, description="Echoed back; unused.")


class ToolResultBlock(StrictRequest):
    """The result of a tool call, sent back by the user."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock] = ""
    is_error: bool = False
    cache_control: dict[str, Any] | None = None

    def text(self) -> str:
        """The result as text."""
        content = self.content
        body = content if isinstance(content, str) else "".join(b.text for b in content)
        return f"Error: {body}" if self.is_error else body


Block = TextBlock | ToolUseBlock | ToolResultBlock


class Message(StrictRequest):
    """One turn of the conversation."""

    role: Literal["user", "assistant"]
    content: str | list[Block]


class AnthropicTool(StrictRequest):
    """A client tool: a name, a description and the JSON Schema of its input."""

    name: str = Field(pattern=TOOL_NAME)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    cache_control: dict[str, Any] | None = None


class AnthropicToolChoice(StrictRequest):
    """tool_choice: auto, any, a named tool, or none."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class MessagesRequest(StrictRequest):
    """POST /v1/messages."""

    REFUSED: ClassVar[dict[str, str]] = {
        "thinking": "the served models do not think in a separate channel",
        "container": "there are no code-execution containers",
        "mcp_servers": "MCP servers are not supported",
    }

    model: str
    max_tokens: int = Field(ge=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = Field(default=None, max_length=16)
    temperature: float = Field(default=1.0, ge=0.0, le=1.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    stream: bool = False
    tools: list[AnthropicTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: AnthropicToolChoice | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Accepted (user_id).")
    service_tier: Literal["auto", "standard_only"] | None = None
    thinking: dict[str, Any] | None = None
    container: Any = None
    mcp_servers: list[Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MessagesRequest:
        if self.thinking and self.thinking.get("type") == "disabled":
            self.thinking = None
        refuse(self.__dict__, self.REFUSED)
        choice = self.tool_choice
        names = {t.name for t in self.tools or []}
        if choice is not None and choice.type == "tool" and choice.name not in names:
            raise ValueError(f"tool_choice names {choice.name!r}, which is not in tools")
        if choice is not None and choice.type == "any" and not self.tools:
            raise ValueError("tool_choice 'any' needs tools")
        return self

    def to_params(self) -> GenerationParams:
        """The engine parameters this request asks for."""
        return GenerationParams(
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            stop=tuple(self.stop_sequences or ()),
        )


# The response


class TextOut(WireModel):
    """Text the model wrote."""

    type: Literal["text"] = "text"
    text: str


class ToolUseOut(WireModel):
    """A tool call the model made."""

    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class MessageUsage(WireModel):
    """Token counts."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class MessageOut(WireModel):
    """The answer of POST /v1/messages (and the `message` of message_start)."""

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[TextOut | ToolUseOut]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: MessageUsage

"""Function tools: how they reach the model, how calls are enforced, how calls are read back.

`auto`: the tools are rendered by the GGUF chat template when it knows tools, otherwise by a
generic system prompt; calls are read from `<tool_call>{"name": ..., "arguments": {...}}`
`</tool_call>` blocks in the answer (the Hermes convention most tool-tuned templates use).
`required` and a named function: the answer is constrained by a grammar to a JSON array of
calls, so the model cannot answer anything else. `none`: the tools are not shown.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

OPEN, CLOSE = "<tool_call>", "</tool_call>"

Mode = Literal["none", "auto", "required", "named"]


@dataclass(frozen=True)
class FunctionSpec:
    """A function the model may call."""

    name: str
    description: str | None
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        """The OpenAI tool object chat templates expect."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolUse:
    """Which tools a request offers and how it wants them used."""

    functions: tuple[FunctionSpec, ...] = ()
    mode: Mode = "none"
    name: str | None = None  # the function a named choice forces
    parallel: bool = True

    @property
    def active(self) -> bool:
        """True when the model sees the tools."""
        return bool(self.functions) and self.mode != "none"

    @property
    def forced(self) -> bool:
        """True when a grammar forces the answer to be calls."""
        return self.active and self.mode in ("required", "named")


@dataclass(frozen=True)
class Call:
    """One function call read from an answer."""

    id: str
    name: str
    arguments: str  # JSON text


def new_call_id() -> str:
    """A tool call id."""
    return f"call_{uuid.uuid4().hex[:24]}"


def generic_prompt(tools: ToolUse) -> str:
    """The system prompt that describes the tools to a template that cannot."""
    listing = "\n".join(json.dumps(f.as_openai()["function"]) for f in tools.functions)
    if tools.forced:
        how = (
            "Answer with a JSON array of calls, each "
            '{"name": <function name>, "arguments": <arguments object>}, and nothing else.'
        )
    else:
        how = (
            "To call a function, answer with one <tool_call></tool_call> block per call, each "
            'holding {"name": <function name>, "arguments": <arguments object>}, and nothing '
            "else. If no function is needed, answer normally."
        )
    return f"You can call these functions:\n<tools>\n{listing}\n</tools>\n{how}"


def calls_schema(tools: ToolUse) -> dict[str, Any]:
    """The JSON Schema of a forced answer: an array of calls to the allowed functions."""
    allowed = [f for f in tools.functions if tools.mode != "named" or f.name == tools.name]
    variants = [
        {
            "type": "object",
            "properties": {"name": {"const": f.name}, "arguments": f.parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in allowed
    ]
    item = variants[0] if len(variants) == 1 else {"anyOf": variants}
    single = tools.mode == "named" or not tools.parallel
    schema: dict[str, Any] = {"type": "array", "items": item, "minItems": 1}
    if single:
        schema["maxItems"] = 1
    return schema


def _call(obj: Any) -> Call | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Call(new_call_id(), obj["name"], text)


def parse_forced(text: str) -> list[Call]:
    """The calls of a grammar-forced answer (a JSON array of calls)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        return []  # cut short by max_tokens: no complete call
    calls = [_call(item) for item in items] if isinstance(items, list) else []
    return [c for c in calls if c is not None]


def parse_blocks(text: str) -> tuple[str, list[Call]]:
    """Split an `auto` answer into its plain text and the calls in its <tool_call> blocks."""
    calls: list[Call] = []
    plain: list[str] = []
    rest = text
    while OPEN in rest:
        before, _, after = rest.partition(OPEN)
        body, closed, rest = after.partition(CLOSE)
        try:
            call = _call(json.loads(body))
        except json.JSONDecodeError:
            call = None
        if call is None:  # not a call after all: keep the text as the model wrote it
            plain.append(before + OPEN + body + (CLOSE if closed else ""))
            continue
        plain.append(before)
        calls.append(call)
    plain.append(rest)
    return "".join(plain).strip() if calls else "".join(plain), calls


@dataclass
class ToolCallReader:
    """Streams the plain text of an `auto` answer and holds back anything that may be a call."""

    held: str = ""
    in_call: bool = False
    seen_call: bool = False
    text: list[str] = field(default_factory=list)

    def feed(self, piece: str) -> str:
        """Text that is safe to stream now."""
        self.text.append(piece)
        if self.in_call or self.seen_call:
            return ""
        self.held += piece
        if OPEN in self.held:
            self.in_call = self.seen_call = True
            before = self.held.split(OPEN, 1)[0]
            self.held = ""
            return before
        keep = _partial_suffix(self.held, OPEN)
        out, self.held = self.held[: len(self.held) - keep], self.held[len(self.held) - keep :]
        return out

    def finish(self) -> tuple[str, list[Call]]:
        """Text still to stream and the calls, at the end of the answer."""
        if not self.seen_call:
            held, self.held = self.held, ""
            return held, []
        everything = "".join(self.text)
        start = everything.index(OPEN)
        trailing, calls = parse_blocks(everything[start:])
        if not calls:  # an unreadable block: it was text after all
            return everything[start:], []
        return ("" if not trailing.strip() else trailing), calls


def _partial_suffix(text: str, token: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `token`."""
    for size in range(min(len(token) - 1, len(text)), 0, -1):
        if text.endswith(token[:size]):
            return size
    return 0

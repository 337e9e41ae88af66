"""Chat templates from GGUF metadata, rendered in a sandboxed Jinja environment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from models.errors import InvalidRequest

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


class ChatTemplate:
    """A compiled chat template with the model's special tokens."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.source = source
        self._template = env.from_string(source)
        self._specials = {"bos_token": bos_token, "eos_token": eos_token}
        self.uses_tools = "tools" in meta.find_undeclared_variables(env.parse(source))

    def render(
        self,
        messages: list[dict[str, Any]],
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        """Render a conversation (and the tools, when given) into the model's prompt text."""
        extra: dict[str, Any] = {} if tools is None else {"tools": tools}
        try:
            return self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                **self._specials,
                **extra,
            )
        except TemplateError as exc:
            raise InvalidRequest(f"chat template rejected the messages: {exc}", "messages") from exc

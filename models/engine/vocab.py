"""A model's vocabulary and chat template: prompts to token ids and token ids to text."""

from __future__ import annotations

import ctypes
import re
from typing import Any

import llama_cpp as llc

from models.catalog import ModelSpec
from models.chat_template import CHATML_TEMPLATE, ChatTemplate
from models.errors import InvalidRequest

_MARK = re.compile("\ue000(\\d+)\ue001")  # stands in for message text while rendering


class Vocab:
    """Tokenizes prompts (chat messages through the model's template) and detokenizes ids."""

    def __init__(self, model: llc.llama_model_p, spec: ModelSpec) -> None:
        self.vocab = llc.llama_model_get_vocab(model)
        self.n_vocab = llc.llama_vocab_n_tokens(self.vocab)
        self._cache: dict[int, bytes] = {}
        self.template = ChatTemplate(
            spec.chat_template or meta(model, "tokenizer.chat_template") or CHATML_TEMPLATE,
            bos_token=self.special_text(llc.llama_vocab_bos(self.vocab)),
            eos_token=self.special_text(llc.llama_vocab_eos(self.vocab)),
        )

    def supports_tools(self) -> bool:
        """True when the model's chat template renders a `tools` list."""
        return self.template.uses_tools

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """Render messages (and tools, when the template knows them) and tokenize them.

        Only the template's own text is parsed for control tokens: message text is tokenized as
        plain text, so `<|im_end|>` typed by a user can never forge a turn. Tool definitions and
        tool calls are rendered by the template, so control-token text in them is refused.
        """
        tools = tools if tools is not None and self.template.uses_tools else None
        self._refuse_control_text(tools, [m.get("tool_calls") for m in messages])
        if any(_MARK.search(str(m.get("content") or "")) for m in messages):
            raise InvalidRequest("messages contain reserved characters U+E000/U+E001", "messages")
        masked_ids = [
            i for i, m in enumerate(messages) if m.get("content") or not m.get("tool_calls")
        ]
        masked = list(messages)
        for i in masked_ids:
            masked[i] = {**messages[i], "content": f"\ue000{i}\ue001"}
        parts = _MARK.split(self.template.render(masked, tools=tools))
        found = [int(i) for i in parts[1::2]]
        if sorted(found) != masked_ids:  # the template reshaped the text
            return self._chat_prompt_checked(messages, tools)
        tokens = self._bos_unless(parts[0])
        for i, part in enumerate(parts):
            if i % 2:
                content = str(messages[int(part)].get("content") or "")
                tokens += self.tokenize(content, add_special=False, parse_special=False)
            elif part:
                tokens += self.tokenize(part, add_special=False, parse_special=True)
        return tokens

    def _chat_prompt_checked(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> list[int]:
        """Fallback for templates that transform the text: refuse control-token text outright."""
        plain = [str(m.get("content") or "") for m in messages]
        for text in plain:
            if self.tokenize(text, False, True) != self.tokenize(text, False, False):
                raise InvalidRequest("messages contain the model's control tokens", "messages")
        text = self.template.render(messages, tools=tools)
        return self._bos_unless(text) + self.tokenize(text, add_special=False)

    def _refuse_control_text(self, *values: Any) -> None:
        """Refuse control-token text in any string inside tools or tool calls."""
        strings: list[str] = []
        _collect_strings(values, strings)
        text = "\n".join(strings)
        if text and self.tokenize(text, False, True) != self.tokenize(text, False, False):
            raise InvalidRequest("tools or tool calls contain the model's control tokens", "tools")

    def _bos_unless(self, text: str) -> list[int]:
        """[BOS] when the model wants one and the rendered text does not start with it."""
        bos_token = llc.llama_vocab_bos(self.vocab)
        bos = self.special_text(bos_token)
        wanted = bool(llc.llama_vocab_get_add_bos(self.vocab)) and bos_token >= 0
        return [bos_token] if wanted and not (bos and text.startswith(bos)) else []

    def text_prompt(self, text: str) -> list[int]:
        """Tokenize a completion prompt as plain text (BOS as the model wants)."""
        tokens = self.tokenize(text, add_special=True, parse_special=False)
        if not text.strip() or not tokens:
            raise InvalidRequest("prompt must contain some text", "prompt")
        return tokens

    def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids (special tokens as their text)."""
        bad = next((t for t in tokens if not 0 <= t < self.n_vocab), None)
        if bad is not None:
            raise InvalidRequest(
                f"token id {bad} is not in the vocabulary (0 to {self.n_vocab - 1})", "tokens"
            )
        data = b"".join(self.piece(t, special=True) for t in tokens)
        return data.decode(errors="replace")

    def tokenize(
        self, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        """Text → token ids."""
        data = text.encode()
        size = len(data) + 8
        while True:
            tokens = (llc.llama_token * size)()
            n = llc.llama_tokenize(
                self.vocab, data, len(data), tokens, size, add_special, parse_special
            )
            if n >= 0:
                return list(tokens[:n])
            size = -n

    def piece(self, token: int, special: bool = False) -> bytes:
        """A token's bytes (control tokens as their text when `special`)."""
        cached = self._cache.get(token) if not special else None
        if cached is not None:
            return cached
        buf = ctypes.create_string_buffer(64)
        n = llc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llc.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if not special:
            self._cache[token] = buf.raw[:n]
        return buf.raw[:n]

    def special_text(self, token: int) -> str:
        """A control token's text ('' for -1)."""
        return self.piece(token, special=True).decode(errors="replace") if token >= 0 else ""


def meta(model: llc.llama_model_p, key: str) -> str | None:
    """A GGUF metadata value as text (None when absent)."""
    size = 1 << 16
    buf = ctypes.create_string_buffer(size)
    n = llc.llama_model_meta_val_str(model, key.encode(), buf, size)
    if n < 0:
        return None
    if n >= size:
        buf = ctypes.create_string_buffer(n + 1)
        llc.llama_model_meta_val_str(model, key.encode(), buf, n + 1)
    return buf.value.decode(errors="replace")


def _collect_strings(value: Any, out: list[str]) -> None:
    """Every string (keys included) inside nested lists and dicts."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect_strings(key, out)
            _collect_strings(item, out)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_strings(item, out)

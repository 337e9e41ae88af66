"""Evaluation prompt sets: JSONL files validated on load, versioned by content hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SETS_DIR = Path(__file__).resolve().parent / "sets"
ROLES = frozenset({"system", "developer", "user", "assistant"})


class PromptSetError(ValueError):
    """A prompt set file that cannot be used, with the line at fault."""


@dataclass(frozen=True)
class Prompt:
    """One evaluation prompt: chat messages and an optional output token limit."""

    id: str
    messages: tuple[dict[str, str], ...]
    max_tokens: int | None = None

    def with_system(self, system: str | None) -> list[dict[str, str]]:
        """The messages, with `system` replacing (or prepended as) the system message."""
        messages = [dict(m) for m in self.messages]
        if system is None:
            return messages
        rest = [m for m in messages if m["role"] not in ("system", "developer")]
        return [{"role": "system", "content": system}, *rest]


@dataclass(frozen=True)
class PromptSet:
    """A named, hashed, validated list of prompts."""

    name: str
    path: Path
    sha256: str
    prompts: tuple[Prompt, ...] = field(repr=False)

    def __len__(self) -> int:
        return len(self.prompts)

    def head(self, n: int | None) -> PromptSet:
        """The first `n` prompts (all when n is None); same name, a hash of its own.

        A shortened set must never share the full set's hash, or a --limit run could become the
        reference of full runs.
        """
        if n is None or n >= len(self.prompts):
            return self
        sha256 = hashlib.sha256(f"{self.sha256}:limit={n}".encode()).hexdigest()
        return PromptSet(self.name, self.path, sha256, self.prompts[:n])


def available_sets() -> list[str]:
    """Names of the prompt sets shipped with My LLAMA."""
    return sorted(p.stem for p in SETS_DIR.glob("*.jsonl"))


def resolve(name_or_path: str | Path) -> Path:
    """A shipped set's name (e.g. 'general') or a path to a JSONL file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SETS_DIR / f"{name_or_path}.jsonl"
    if shipped.is_file():
        return shipped
    raise PromptSetError(
        f"prompt set not found: {name_or_path} (a JSONL path, or one of: "
        f"{', '.join(available_sets())})"
    )


def _message(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise PromptSetError(f"{where}: each message must be an object")
    role, content = raw.get("role"), raw.get("content")
    if role not in ROLES:
        raise PromptSetError(f"{where}: role must be one of {sorted(ROLES)}, not {role!r}")
    if not isinstance(content, str) or not content.strip():
        raise PromptSetError(f"{where}: content must be a non-empty string")
    return {"role": role, "content": content}


def _prompt(raw: Any, where: str) -> Prompt:
    if not isinstance(raw, dict):
        raise PromptSetError(f"{where}: each line must be a JSON object")
    unknown = set(raw) - {"id", "messages", "max_tokens"}
    if unknown:
        raise PromptSetError(f"{where}: unknown keys {sorted(unknown)}")
    pid, messages, max_tokens = raw.get("id"), raw.get("messages"), raw.get("max_tokens")
    if not isinstance(pid, str) or not pid:
        raise PromptSetError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(messages, list) or not messages:
        raise PromptSetError(f"{where}: 'messages' must be a non-empty list")
    parsed = tuple(_message(m, f"{where} message {i}") for i, m in enumerate(messages))
    if parsed[-1]["role"] != "user":
        raise PromptSetError(f"{where}: the last message must come from the user")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise PromptSetError(f"{where}: 'max_tokens' must be a positive integer")
    return Prompt(pid, parsed, max_tokens)


def load_prompt_set(name_or_path: str | Path) -> PromptSet:
    """Load and validate a prompt set; its hash covers the file's exact bytes."""
    path = resolve(name_or_path)
    data = path.read_bytes()
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSetError(f"{where}: not valid JSON ({exc.msg})") from exc
        prompt = _prompt(raw, where)
        if prompt.id in seen:
            raise PromptSetError(f"{where}: duplicate id {prompt.id!r}")
        seen.add(prompt.id)
        prompts.append(prompt)
    if not prompts:
        raise PromptSetError(f"{path.name}: no prompts")
    return PromptSet(path.stem, path, hashlib.sha256(data).hexdigest(), tuple(prompts))

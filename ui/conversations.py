"""Saved conversations kept in the browser (localStorage): newest first, a title each, a bound."""

from __future__ import annotations

from typing import Any

MAX_SAVED = 50  # the oldest conversation goes when a 51st is saved
TITLE_CHARS = 60
Message = dict[str, str]
Saved = list[dict[str, Any]]  # [{"title": str, "messages": [Message, ...]}], newest first


def title(messages: list[Message]) -> str:
    """The first user message, on one line and shortened."""
    first = next((m["content"] for m in messages if m["role"] == "user"), "(empty)")
    line = " ".join(first.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def save(saved: Saved, current: int | None, messages: list[Message]) -> tuple[Saved, int | None]:
    """Store `messages` as conversation `current` (or a new one) and move it to the front."""
    rest = [c for i, c in enumerate(saved or []) if i != current]
    if not messages:  # an emptied conversation (undo, clear) is forgotten
        return rest, None
    entry = {"title": title(messages), "messages": list(messages)}
    return [entry, *rest][:MAX_SAVED], 0


def opened(saved: Saved, index: int) -> list[Message]:
    """The messages of saved conversation `index` (none when it is gone)."""
    if not 0 <= index < len(saved or []):
        return []
    return list(saved[index]["messages"])


def listing(saved: Saved) -> list[list[str]]:
    """The rows of the conversation list: one title each, newest first."""
    return [[str(c["title"])] for c in saved or []]

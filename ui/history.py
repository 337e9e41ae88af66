"""Conversation history trimmed to fit the model's context window."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ui.errors import UserFacingError

# A rough, deliberately pessimistic estimate: BPE vocabularies average ~4 bytes of
# English per token; counting 3 bytes per token plus the chat template's markers
# per message leaves a safety margin without asking the server to tokenize.
BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 8
RESERVED_TOKENS = 16


def estimate_tokens(message: dict[str, str]) -> int:
    """Pessimistic token count of one chat message, template overhead included."""
    return TOKENS_PER_MESSAGE + math.ceil(len(message["content"].encode()) / BYTES_PER_TOKEN)


@dataclass(frozen=True)
class Fitted:
    """The messages to send, and how many older messages were left out."""

    messages: list[dict[str, str]]
    dropped: int
    estimated_tokens: int


def fit_history(
    system: str, history: list[dict[str, str]], user: str, n_ctx: int, max_tokens: int
) -> Fitted:
    """System prompt + the newest whole turns of `history` + the new user message, within n_ctx."""
    head = [{"role": "system", "content": system}] if system.strip() else []
    last = {"role": "user", "content": user}
    budget = n_ctx - max_tokens - RESERVED_TOKENS
    used = sum(map(estimate_tokens, [*head, last]))
    if used > budget:
        raise UserFacingError(
            f"The message and system prompt (about {used} tokens) plus max tokens ({max_tokens}) "
            f"do not fit the model's context of {n_ctx} tokens. "
            "Shorten them or lower max tokens."
        )
    start = len(history)
    for i in range(len(history) - 1, -1, -1):
        cost = estimate_tokens(history[i])
        if used + cost > budget:
            break
        used += cost
        if history[i]["role"] == "user":
            start = i  # only ever start on a user message, so turns stay whole
    kept = history[start:]
    used = sum(map(estimate_tokens, [*head, *kept, last]))
    return Fitted(messages=[*head, *kept, last], dropped=start, estimated_tokens=used)

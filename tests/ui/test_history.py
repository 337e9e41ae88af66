"""History trimming: the newest whole turns that fit the context, never a broken turn."""

from __future__ import annotations

import pytest

from ui.errors import UserFacingError
from ui.history import RESERVED_TOKENS, estimate_tokens, fit_history


def turns(n: int, words: int = 50) -> list[dict[str, str]]:
    """n user/assistant turns of roughly `words` words each."""
    out = []
    for i in range(n):
        out.append({"role": "user", "content": f"question {i} " + "word " * words})
        out.append({"role": "assistant", "content": f"answer {i} " + "word " * words})
    return out


def test_short_history_is_sent_whole_with_system_prompt() -> None:
    """A short history fits: system prompt, every turn, then the new message."""
    history = turns(2)
    fitted = fit_history("Be brief.", history, "next?", n_ctx=2048, max_tokens=256)
    assert fitted.dropped == 0
    assert fitted.messages[0] == {"role": "system", "content": "Be brief."}
    assert fitted.messages[1:-1] == history
    assert fitted.messages[-1] == {"role": "user", "content": "next?"}


def test_blank_system_prompt_is_left_out() -> None:
    """A blank system prompt sends no system message."""
    fitted = fit_history("  ", [], "hi", n_ctx=512, max_tokens=64)
    assert fitted.messages == [{"role": "user", "content": "hi"}]


def test_long_history_keeps_newest_whole_turns_within_budget() -> None:
    """A long history keeps only the newest whole turns that fit the budget."""
    history = turns(40)
    n_ctx, max_tokens = 1024, 256
    fitted = fit_history("sys", history, "last question", n_ctx=n_ctx, max_tokens=max_tokens)
    kept = fitted.messages[1:-1]
    assert 0 < fitted.dropped < len(history)
    assert kept == history[fitted.dropped :]  # a suffix: the newest messages
    assert kept[0]["role"] == "user"  # starts on a whole turn
    assert fitted.estimated_tokens == sum(map(estimate_tokens, fitted.messages))
    assert fitted.estimated_tokens <= n_ctx - max_tokens - RESERVED_TOKENS
    # one more turn would not have fitted
    assert (
        fitted.estimated_tokens
        + sum(map(estimate_tokens, history[fitted.dropped - 2 : fitted.dropped]))
        > n_ctx - max_tokens - RESERVED_TOKENS
    )


def test_estimate_is_pessimistic_for_non_ascii() -> None:
    """Non-ASCII text is estimated at more tokens than ASCII of the same length."""
    assert estimate_tokens({"role": "user", "content": "é" * 30}) > estimate_tokens(
        {"role": "user", "content": "e" * 30}
    )


def test_message_too_long_for_context_is_a_readable_error() -> None:
    """A message that alone overflows the context is a readable error."""
    with pytest.raises(UserFacingError, match="do not fit the model's context of 512 tokens"):
        fit_history("", [], "word " * 2000, n_ctx=512, max_tokens=64)

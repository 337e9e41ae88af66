"""The chat handler end to end against the real server: streaming, history, trimming, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

import gradio as gr
import pytest

from prompts.library import load_library
from tests.conftest import Server
from ui.chat import STOPPED, ChatTab, until_stopped
from ui.client import ServerClient
from ui.errors import UserFacingError

Turn = tuple[list[dict[str, str]], list[dict[str, str]], str, str]


def run_turn(tab: ChatTab, message: str, history: list[dict[str, str]], **kw: float) -> list[Turn]:
    """Every update one turn yields (chatbot, history, input box, stats)."""

    async def collect() -> list[Turn]:
        """Run the turn to the end."""
        settings = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 48.0, **kw}
        updates = tab.respond(message, history, None, "Be brief.", **settings, request=gr.Request())
        return [update async for update in updates]

    return asyncio.run(collect())


def test_answers_stream_and_history_grows_turn_by_turn(server: Server) -> None:
    """Two turns: each answer streams in pieces and the history grows by a user/assistant pair."""
    tab = ChatTab(ServerClient(server.url, server.api_key, timeout=60), load_library())
    # An answer that runs to max_tokens (48, greedy): it streams for far longer than the 50 ms
    # between page updates, however fast the server (a one-line answer could end within them).
    first = run_turn(tab, "What is the capital of France? Describe the city in detail.", [])
    chatbot, history, box, stats = first[-1]
    assert "· 48 tokens" in stats, stats
    streaming = [u for u in first if u[3].endswith("streaming…")]
    assert len(streaming) >= 2  # the answer grew piece by piece
    assert box == "" and chatbot == history
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"].strip()
    assert "TTFT" in stats and "tokens" in stats and "left out" not in stats

    second = run_turn(tab, "And of Italy?", history)
    assert [m["role"] for m in second[-1][1]] == ["user", "assistant"] * 2


def test_long_history_is_trimmed_so_the_real_server_accepts_it(server: Server) -> None:
    """A history four times the context is trimmed, the server answers, the UI shows it all."""
    tab = ChatTab(ServerClient(server.url, server.api_key, timeout=60), load_library())
    filler = "The quick brown fox jumps over the lazy dog, again and again. " * 12
    history = [
        {"role": role, "content": f"{i}: {filler}"}
        for i in range(30)
        for role in ("user", "assistant")
    ]  # about 9,000 tokens: four times the 2,048-token context
    *_, (_, kept, _, stats) = run_turn(tab, "Summarise our talk.", history, max_tokens=128.0)
    assert "older message(s) left out to fit the context" in stats, stats
    assert "TTFT" in stats  # the server answered: no context overflow
    assert kept[:-2] == history  # the UI still shows the whole conversation


def test_errors_become_a_stats_line_and_keep_the_message(server: Server) -> None:
    """A 401 becomes an error line; the unsent message stays in the box, the history untouched."""
    tab = ChatTab(ServerClient(server.url, "wrong-key"), load_library())
    updates = run_turn(tab, "hello?", [])
    chatbot, history, box, stats = updates[-1]
    assert stats.startswith("**Error:** The server at ") and "(401)" in stats
    assert box == "hello?" and history == [] and chatbot == []


def test_stop_ends_the_answer_with_a_note_and_keeps_what_came(server: Server) -> None:
    """Stop mid-answer: one last update keeps the partial answer and says it stopped."""
    tab = ChatTab(ServerClient(server.url, server.api_key, timeout=60), load_library())
    session = gr.Request()

    async def stop_after_two_pieces() -> tuple[list[Turn], list[Turn]]:
        updates = tab.respond(
            "Write a long story about a dragon.", [], None, "", 0.0, 1.0, 400.0, request=session
        )
        before: list[Turn] = []
        after: list[Turn] = []
        async for update in updates:
            (after if after or len(before) == 3 else before).append(update)
            if len(before) == 3 and not after:  # "Thinking…" and two growing answers
                await tab.stop(session)
        return before, after

    before, after = asyncio.run(stop_after_two_pieces())
    assert [u[3].endswith("streaming…") for u in before] == [False, True, True]
    assert len(after) == 1, [u[3] for u in after]
    chatbot, history, box, stats = after[0]
    assert stats == STOPPED and box == "" and chatbot == history
    partial = before[-1][1][-1]["content"]
    assert history[-1]["role"] == "assistant" and history[-1]["content"].startswith(partial)
    assert len(history[-1]["content"]) < 1500  # far from the 400 tokens asked for


async def _stalled(closed: list[str]) -> AsyncGenerator[str, None]:
    """One piece, then a wait no piece ends (a request queued at a busy server)."""
    try:
        yield "first"
        await asyncio.Event().wait()
        yield "never"
    finally:
        closed.append("closed")


def test_until_stopped_closes_a_stream_that_sends_nothing() -> None:
    """Stop while no piece comes: the iteration ends and the stream is closed (its request too)."""
    closed: list[str] = []

    async def read() -> list[str]:
        stopped = asyncio.Event()
        got = []
        async with aclosing(until_stopped(_stalled(closed), stopped)) as pieces:
            async for piece in pieces:
                got.append(piece)
                stopped.set()
        return got

    assert asyncio.run(asyncio.wait_for(read(), timeout=30)) == ["first"]
    assert closed == ["closed"]


async def _failing() -> AsyncGenerator[str, None]:
    """One piece, then the server's error."""
    yield "first"
    raise UserFacingError("the server went away")


def test_until_stopped_passes_the_streams_error_on() -> None:
    """An error inside the stream reaches the reader (the chat turns it into its error line)."""

    async def read() -> list[str]:
        got = []
        with pytest.raises(UserFacingError, match="went away"):
            async for piece in until_stopped(_failing(), asyncio.Event()):
                got.append(piece)
        return got

    assert asyncio.run(read()) == ["first"]

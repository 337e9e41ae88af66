"""The UI client against the real server, plus a fake one for failures it cannot provoke."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import Server
from tests.helpers import free_port
from tests.ui.fake_server import fake_server
from ui.client import AnswerStats, ServerClient
from ui.errors import UserFacingError

HI = [{"role": "user", "content": "Say hello."}]
MODEL = "smollm2-135m-instruct"  # the server's default model


async def collect(client: ServerClient, **kw: Any) -> tuple[str, AnswerStats]:
    """Run one chat to the end: the text and the stats."""
    text, stats = "", None
    async for piece in client.chat(MODEL, HI, **kw):
        if isinstance(piece, AnswerStats):
            stats = piece
        else:
            text += piece
    assert stats is not None
    return text, stats


@pytest.fixture
def client(server: Server) -> ServerClient:
    """A client with the right key."""
    return ServerClient(server.url, server.api_key, timeout=60)


def test_models_come_with_their_context_size(client: ServerClient) -> None:
    cards = asyncio.run(client.models())
    assert MODEL in [c.id for c in cards]
    assert all(c.n_ctx == 2048 for c in cards)


def test_streamed_answer_ends_with_exact_usage(client: ServerClient) -> None:
    text, stats = asyncio.run(collect(client, temperature=0.0, top_p=1.0, max_tokens=24))
    assert text.strip()
    assert stats.exact and 1 <= stats.tokens <= 24
    assert 0 < stats.ttft <= stats.e2e
    assert stats.line().startswith(f"TTFT {stats.ttft:.2f} s · ")
    assert stats.line().endswith(f" · {stats.tokens} tokens")


def test_closing_the_stream_frees_the_slot_on_the_server(client: ServerClient) -> None:
    async def scenario() -> tuple[float, float]:
        story = [{"role": "user", "content": "Write a very long story about a dragon."}]
        stream = client.chat(MODEL, story, temperature=0.8, top_p=1.0, max_tokens=1500)
        pieces = 0
        async for piece in stream:
            assert isinstance(piece, str)
            pieces += 1
            if pieces == 3:
                break
        during = sum((await client.running_requests()).values())
        await stream.aclose()  # what Gradio does when Stop cancels the event
        deadline = time.monotonic() + 15
        after = during
        while time.monotonic() < deadline:
            after = sum((await client.running_requests()).values())
            if after == 0:
                break
            await asyncio.sleep(0.1)
        return during, after

    during, after = asyncio.run(scenario())
    assert during >= 1
    assert after == 0


def test_wrong_api_key_is_a_readable_401(server: Server) -> None:
    bad = ServerClient(server.url, "wrong-key")
    for call in (bad.models(), collect(bad, temperature=0.0, top_p=1.0, max_tokens=4)):
        with pytest.raises(UserFacingError) as info:
            asyncio.run(call)
        assert info.value.status == 401
        assert "refused the API key (401): Missing or invalid API key" in info.value.message


def test_invalid_setting_is_a_readable_422_naming_the_field(client: ServerClient) -> None:
    with pytest.raises(UserFacingError) as info:
        asyncio.run(collect(client, temperature=5.0, top_p=1.0, max_tokens=4))
    assert info.value.status == 422
    assert "rejected the request (422): temperature:" in info.value.message


def test_server_down_says_so() -> None:
    down = ServerClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    for call in (down.models(), collect(down, temperature=0.0, top_p=1.0, max_tokens=4)):
        with pytest.raises(
            UserFacingError, match=r"Cannot reach the server at http://127\.0\.0\.1"
        ):
            asyncio.run(call)


def test_busy_server_is_a_readable_429() -> None:
    with fake_server() as url:
        busy = ServerClient(url)
        calls = (
            busy.predict("iris", {"sepal_length": 5.1}),
            collect(busy, temperature=0.0, top_p=1.0, max_tokens=4),
        )
        for call in calls:
            with pytest.raises(UserFacingError) as info:
                asyncio.run(call)
            assert info.value.status == 429
            assert info.value.message.startswith("The server is busy (429): Too many requests")


def test_error_inside_a_stream_is_readable() -> None:
    with fake_server() as url:
        broken = ServerClient(f"{url}/broken-stream")
        with pytest.raises(UserFacingError, match="stopped the answer: generation failed: out of"):
            asyncio.run(collect(broken, temperature=0.0, top_p=1.0, max_tokens=4))

"""The UI client against the real server, plus a fake one for an error inside a stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import API_KEY, Server
from tests.helpers import free_port, running_myllama
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
    """/v1/models lists the default model with its 2,048-token context."""
    cards = asyncio.run(client.models())
    assert MODEL in [c.id for c in cards]
    assert all(c.n_ctx == 2048 for c in cards)


def test_streamed_answer_ends_with_exact_usage(client: ServerClient) -> None:
    """A streamed answer ends with the server's exact token count and consistent timings."""
    text, stats = asyncio.run(collect(client, temperature=0.0, top_p=1.0, max_tokens=24))
    assert text.strip()
    assert stats.exact and 1 <= stats.tokens <= 24
    assert 0 < stats.ttft <= stats.e2e
    assert stats.line().startswith(f"TTFT {stats.ttft:.2f} s · ")
    assert stats.line().endswith(f" · {stats.tokens} tokens")


def test_closing_the_stream_frees_the_slot_on_the_server(client: ServerClient) -> None:
    """Closing the stream mid-answer drops the server's running-request gauge to 0."""

    async def scenario() -> tuple[float, float]:
        """Read three pieces, close the stream as Stop does; the gauge during and after."""
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
    """A wrong key: a readable 401 for plain requests and for chat."""
    bad = ServerClient(server.url, "wrong-key")
    for call in (bad.models(), collect(bad, temperature=0.0, top_p=1.0, max_tokens=4)):
        with pytest.raises(UserFacingError) as info:
            asyncio.run(call)
        assert info.value.status == 401
        assert "refused the API key (401): Missing or invalid API key" in info.value.message


def test_invalid_setting_is_a_readable_400_naming_the_field(client: ServerClient) -> None:
    """An out-of-range temperature: a readable 400 naming the field."""
    with pytest.raises(UserFacingError) as info:
        asyncio.run(collect(client, temperature=5.0, top_p=1.0, max_tokens=4))
    assert info.value.status == 400
    assert "rejected the request (400): temperature:" in info.value.message


def test_server_down_says_so() -> None:
    """No server on the port: a readable 'cannot reach' for plain requests and for chat."""
    down = ServerClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    for call in (down.models(), collect(down, temperature=0.0, top_p=1.0, max_tokens=4)):
        with pytest.raises(
            UserFacingError, match=r"Cannot reach the server at http://127\.0\.0\.1"
        ):
            asyncio.run(call)


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with one slot and no queue: a second chat while one runs gets a 429."""
    work = tmp_path_factory.mktemp("one-slot")
    url = f"http://127.0.0.1:{free_port()}"
    args = ["serve", "--port", url.rsplit(":", 1)[1], "--api-key", API_KEY]
    args += ["--parallel", "1", "--max-queue", "0", "--no-load-predictors"]
    args += ["--tracking-uri", f"sqlite:///{work}/mlflow.db"]
    args += ["--prediction-log", str(work / "predictions.db")]
    with running_myllama(args, f"{url}/health", log_name="one-slot"):
        yield url


def test_busy_server_is_a_readable_429(one_slot_server: str) -> None:
    """One long answer holds the only slot: the next chat is a readable 429, not a traceback."""
    client = ServerClient(one_slot_server, API_KEY, timeout=60)

    async def scenario() -> UserFacingError:
        """Hold the only slot with a long answer and send a second chat meanwhile."""
        story = [{"role": "user", "content": "Write a very long story about a dragon."}]
        long = client.chat(MODEL, story, temperature=0.8, top_p=1.0, max_tokens=1500)
        try:
            assert isinstance(await anext(long), str)  # streaming: the slot is taken
            with pytest.raises(UserFacingError) as info:
                await collect(client, temperature=0.0, top_p=1.0, max_tokens=4)
        finally:
            await long.aclose()
        return info.value

    busy = asyncio.run(scenario())
    assert busy.status == 429
    assert busy.message.startswith("The server is busy (429): The server is busy: 1 requests")
    assert busy.message.endswith("Wait a moment and try again.")


def test_error_inside_a_stream_is_readable() -> None:
    """An error event after the first token ends the answer with a readable message."""
    with fake_server() as url:
        broken = ServerClient(url)
        with pytest.raises(UserFacingError, match="stopped the answer: generation failed: out of"):
            asyncio.run(collect(broken, temperature=0.0, top_p=1.0, max_tokens=4))

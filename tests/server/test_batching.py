"""Continuous batching: batch invariance, usage under load, cancellation, backpressure."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from openai import AsyncOpenAI

from tests.conftest import Server

MODEL = "smollm2-135m-instruct"
PROMPTS = [
    "What is the boiling point of water?",
    "Write a haiku about autumn.",
    "Explain what a list is in Python.",
    "Give me three tips for better sleep.",
    "Who wrote Romeo and Juliet?",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 12?",
    "Describe the colour blue to someone.",
]


def metric(server: Server, name: str, **labels: str) -> float:
    """Read one sample from the server's Prometheus /metrics."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if match and match.group(1) == name:
            got = ",".join(sorted(match.group(2).split(",")))
            if got == wanted:
                return float(match.group(3))
    return 0.0


async def _stream(client: AsyncOpenAI, prompt: str, max_tokens: int) -> tuple[str, str, int, int]:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert usage is not None
    return text, finish, usage.prompt_tokens, usage.completion_tokens


def test_batch_invariance_and_usage(server: Server) -> None:
    """Each answer is identical alone and beside 7 others; all 8 streams finish with usage."""

    async def scenario() -> tuple[list, list]:
        client = AsyncOpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
        alone = [await _stream(client, p, 32) for p in PROMPTS]
        together = await asyncio.gather(*(_stream(client, p, 32) for p in PROMPTS))
        return alone, list(together)

    alone, together = asyncio.run(scenario())
    for solo, batched in zip(alone, together, strict=True):
        assert batched == solo
        text, finish, prompt_tokens, completion_tokens = batched
        assert text.strip() and finish in ("stop", "length")
        assert prompt_tokens > 0
        assert (completion_tokens == 32) if finish == "length" else (0 < completion_tokens <= 32)


def test_disconnect_frees_slot_and_others_continue(server: Server) -> None:
    """Closing a stream cancels it on the server; a neighbour stream still finishes."""
    cancelled_before = metric(
        server, "myllama_requests_finished_total", model=MODEL, reason="cancelled"
    )
    body = {
        "model": MODEL,
        "stream": True,
        "max_tokens": 1500,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon."}],
    }

    async def scenario() -> tuple[str, str, int, int]:
        client = AsyncOpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
        neighbour = asyncio.create_task(_stream(client, "Name the planets.", 48))
        async with (
            httpx.AsyncClient(timeout=60) as http,
            http.stream(
                "POST", f"{server.v1}/chat/completions", json=body, headers=server.headers()
            ) as response,
        ):
            assert response.status_code == 200
            lines = 0
            async for line in response.aiter_lines():
                lines += line.startswith("data:")
                if lines >= 5:
                    break
        return await neighbour

    text, finish, _, _ = asyncio.run(scenario())
    assert text.strip() and finish in ("stop", "length")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        running = metric(server, "myllama_requests_running", model=MODEL)
        cancelled = metric(
            server, "myllama_requests_finished_total", model=MODEL, reason="cancelled"
        )
        if running == 0 and cancelled == cancelled_before + 1:
            break
        time.sleep(0.1)
    assert running == 0
    assert cancelled == cancelled_before + 1


def test_queue_limit_gives_429_never_5xx(server: Server) -> None:
    """Beyond the slots and the bounded queue, requests get 429 envelopes with Retry-After."""
    body = {
        "model": MODEL,
        "max_tokens": 48,
        "temperature": 0,
        "messages": [{"role": "user", "content": "Tell me about the sea."}],
    }

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as http:
            return await asyncio.gather(
                *(
                    http.post(f"{server.v1}/chat/completions", json=body, headers=server.headers())
                    for _ in range(30)
                )
            )

    responses = asyncio.run(scenario())
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    rejected = [r for r in responses if r.status_code == 429]
    assert rejected and statuses.count(200) >= 8
    for response in rejected:
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "queue_full"
        assert response.json()["error"]["type"] == "rate_limit_error"
    assert metric(server, "myllama_requests_rejected_total", model=MODEL) >= len(rejected)

"""Load generation over HTTP with the official `openai` SDK: streamed requests at a concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI, OpenAIError

from eval.latency import RequestRecord
from prompts.sets import Prompt

DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class Sampling:
    """What every request of a run asks for."""

    model: str | None
    system: str | None
    temperature: float
    max_tokens: int | None
    seed: int | None

    def tokens_for(self, prompt: Prompt) -> int:
        """The flag wins, then the prompt's own limit, then the default."""
        return self.max_tokens or prompt.max_tokens or DEFAULT_MAX_TOKENS


def base_url(server_url: str) -> str:
    """The OpenAI base URL (…/v1) of a server URL given with or without /v1."""
    url = server_url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def client(server_url: str, api_key: str | None, timeout: float = 600.0) -> AsyncOpenAI:
    """An SDK client for the server (no retries: a failure is a measurement)."""
    return AsyncOpenAI(
        base_url=base_url(server_url), api_key=api_key or "none", timeout=timeout, max_retries=0
    )


def trace_requests() -> None:
    """Record every request this process sends with the SDK as an MLflow trace (openai
    autologging on the client side), in the active experiment and linked to the active run."""
    import mlflow.openai

    mlflow.openai.autolog()


async def server_models(server_url: str, api_key: str | None) -> list[dict[str, Any]]:
    """The server's /v1/models items, with their "meta" (file, hash, settings)."""
    async with client(server_url, api_key) as sdk:
        page = await sdk.models.list()
    return [m.model_dump() for m in page.data]


async def _one(sdk: AsyncOpenAI, prompt: Prompt, sampling: Sampling, model: str) -> RequestRecord:
    """Send one streamed request and time it."""
    record = RequestRecord(prompt.id)
    parts: list[str] = []
    messages: Any = prompt.with_system(sampling.system)  # plain dicts, as the API takes them
    start = time.perf_counter()
    try:
        stream = await sdk.chat.completions.create(
            model=model,
            messages=messages,
            temperature=sampling.temperature,
            max_tokens=sampling.tokens_for(prompt),
            seed=sampling.seed,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            now = time.perf_counter() - start
            if chunk.usage is not None:
                record.output_tokens = chunk.usage.completion_tokens
                record.prompt_tokens = chunk.usage.prompt_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    if record.ttft is None:
                        record.ttft = now
                    record.token_times.append(now)
                    parts.append(choice.delta.content)
                if choice.finish_reason:
                    record.finish_reason = choice.finish_reason
        record.e2e = time.perf_counter() - start
    except OpenAIError as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    record.answer = "".join(parts)
    return record


async def run_level(
    server_url: str,
    api_key: str | None,
    prompts: list[Prompt],
    sampling: Sampling,
    model: str,
    concurrency: int,
    sink: list[RequestRecord],
    on_done: Callable[[RequestRecord], None] | None = None,
) -> float:
    """Send every prompt with at most `concurrency` in flight; records land in `sink` as they end.

    Returns the wall time from the first request sent to the last answer received.
    """
    gate = asyncio.Semaphore(concurrency)

    async def worker(sdk: AsyncOpenAI, prompt: Prompt) -> None:
        async with gate:
            record = await _one(sdk, prompt, sampling, model)
        sink.append(record)
        if on_done is not None:
            on_done(record)

    async with client(server_url, api_key) as sdk:
        start = time.perf_counter()
        await asyncio.gather(*(worker(sdk, p) for p in prompts))
        return time.perf_counter() - start

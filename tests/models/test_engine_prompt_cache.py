"""The host-RAM prompt cache: a conversation whose slot was taken gets its turns back from RAM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, Finish, GenerationParams
from models.engine.llama_engine import LlamaEngine
from tests.models.streams import drain

SYSTEM = "You are a patient tutor. " + " ".join(f"Rule {i}: be kind and exact." for i in range(30))
GREEDY = GenerationParams(max_tokens=24, temperature=0)


@pytest.fixture(scope="module")
def cached() -> Iterator[LlamaEngine]:
    """One slot, so any other request takes it, and a host cache behind it."""
    engine = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=1, n_ctx=1024, host_cache_mib=64))
    yield engine
    engine.close()


async def _answer(engine: LlamaEngine, prompt: list[int]) -> tuple[str, Finish]:
    [stream] = await engine.submit(prompt, GREEDY)
    return await drain(stream)


def test_second_turn_after_other_traffic_is_restored_from_host_ram(cached: LlamaEngine) -> None:
    """Turn 2 reuses turn 1's cells from RAM, and answers exactly as a cold engine does."""
    turn1 = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+2?"}]
    first_prompt = cached.chat_prompt(turn1)
    answer, _ = asyncio.run(_answer(cached, first_prompt))
    other = cached.chat_prompt([{"role": "user", "content": "Write a haiku about rain. " * 4}])
    asyncio.run(_answer(cached, other))  # takes the only slot: turn 1 goes to host RAM
    assert cached.stats().host_cache_entries >= 1
    turn2 = [*turn1, {"role": "assistant", "content": answer}, {"role": "user", "content": "x3?"}]
    second_prompt = cached.chat_prompt(turn2)
    before = cached.stats()
    text, finish = asyncio.run(_answer(cached, second_prompt))
    after = cached.stats()
    restored = after.host_cache_tokens - before.host_cache_tokens
    assert restored >= len(first_prompt) and finish.cached_tokens == restored
    warm = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=1, n_ctx=1024, host_cache_mib=0))
    try:  # the same two turns with nothing in between: turn 1's cells never left the slot
        asyncio.run(_answer(warm, first_prompt))
        expected, warm_finish = asyncio.run(_answer(warm, second_prompt))
    finally:
        warm.close()
    assert warm_finish.cached_tokens == restored and text == expected


def test_host_cache_stays_within_its_bound() -> None:
    """With a 1 MiB budget, saving many sequences never holds more than 1 MiB."""
    engine = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=1, n_ctx=512, host_cache_mib=1))
    try:
        for i in range(6):
            prompt = engine.text_prompt(f"Story {i}: a fox {i} and a crow {i} met at dawn.")
            asyncio.run(_answer(engine, prompt))
            stats = engine.stats()
            assert stats.host_cache_bytes <= 1 << 20
        assert engine.stats().host_cache_entries >= 1
    finally:
        engine.close()

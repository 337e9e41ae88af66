"""--kv-unified: one KV budget for all slots, shared prefix cells, admission within it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, Finish, GenerationParams, Piece
from models.engine.llama_engine import LlamaEngine
from tests.models.streams import drain

SYSTEM = "You answer for a shipping company. " + " ".join(
    f"Rule {i}: cite handbook section {i} and never guess." for i in range(40)
)


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    """Four slots sharing 1,024 cells: more than a quarter of them for one request is fine."""
    config = EngineConfig(parallel=4, ctx_size=1024, kv_unified=True, n_threads=2)
    engine = LlamaEngine(DEFAULT_MODEL, config)
    yield engine
    engine.close()


def _prompt(engine: LlamaEngine, question: str, system: str = SYSTEM) -> list[int]:
    return engine.chat_prompt(
        [{"role": "system", "content": system}, {"role": "user", "content": question}]
    )


def test_one_request_may_use_most_of_the_shared_cache(engine: LlamaEngine) -> None:
    """A request of ~700 cells runs in a 1,024-cell cache split by nobody into 4 x 256."""
    assert (engine.info()["ctx_size"], engine.n_ctx) == (1024, 1024)
    prompt = _prompt(engine, "Where is parcel 7?")
    assert len(prompt) > 256
    params = GenerationParams(max_tokens=1024 - len(prompt) - 8, temperature=0)

    async def run() -> tuple[str, Finish]:
        [stream] = await engine.submit(prompt, GenerationParams(max_tokens=16, temperature=0))
        await drain(stream)  # warm: the long one below reuses these cells
        [stream] = await engine.submit(prompt, params)
        return await drain(stream)

    text, finish = asyncio.run(run())
    assert finish.reason in ("stop", "length") and finish.completion_tokens > 0 and text


def test_a_request_that_does_not_fit_waits_for_cells_then_runs(engine: LlamaEngine) -> None:
    """Two requests that need 600 cells each in 1,024: the second waits for the first, then runs."""
    first = engine.chat_prompt([{"role": "user", "content": "Count to ten. " * 60}])
    second = engine.chat_prompt([{"role": "user", "content": "Name a colour. " * 60}])
    params = GenerationParams(max_tokens=600 - max(len(first), len(second)), temperature=0)

    async def together() -> tuple[Finish, Finish, int]:
        [a] = await engine.submit(first, params)
        [b] = await engine.submit(second, params)
        waited = 0
        async for event in a:  # while the first runs, the second must be waiting
            if isinstance(event, Piece):
                waited = max(waited, engine.stats().waiting)
            else:
                a_finish = event
        text, b_finish = await drain(b)
        assert text
        return a_finish, b_finish, waited

    a_finish, b_finish, waited = asyncio.run(together())
    assert waited == 1
    assert a_finish.reason in ("stop", "length") and b_finish.reason in ("stop", "length")
    assert b_finish.completion_tokens > 0 and b_finish.queued_s > 0
    assert engine.stats().kv_cells_used == 0


def test_a_shared_prefix_is_held_once_for_two_running_requests(engine: LlamaEngine) -> None:
    """B shares A's system-prompt cells while A generates: counted, and held only once."""
    system = SYSTEM.replace("shipping", "freight")  # cached in no slot yet
    a_prompt = _prompt(engine, "Write a long story about a lost parcel.", system)
    b_prompt = _prompt(engine, "Where is parcel 12?", system)
    common = next(i for i, (x, y) in enumerate(zip(a_prompt, b_prompt, strict=False)) if x != y)
    assert common > 200

    async def run() -> tuple[int, int]:
        [a] = await engine.submit(a_prompt, GenerationParams(max_tokens=200, temperature=0))
        async for event in a:  # A has prefilled once it streams its first piece
            if isinstance(event, Piece):
                break
        before = engine.stats().shared_prefix_tokens
        [b] = await engine.submit(b_prompt, GenerationParams(max_tokens=40, temperature=0))
        async for event in b:  # B has prefilled too: both hold their cells now
            if isinstance(event, Piece):
                break
        used = engine.stats().kv_cells_used
        shared = engine.stats().shared_prefix_tokens - before
        for stream in (a, b):
            stream.cancel()
            await drain(stream)
        return shared, used

    shared, used = asyncio.run(run())
    assert shared >= common - 1
    # unshared, the two would hold both prompts plus A's output (at least one token)
    assert used <= len(a_prompt) + 200 + len(b_prompt) - common + 2
    assert engine.stats().kv_cells_used == 0

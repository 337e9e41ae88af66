"""Prompt-lookup speculation: the same greedy output as without it, with drafts accepted."""

from __future__ import annotations

import asyncio

import pytest

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, EngineStats, Finish, GenerationParams, Piece
from models.engine.llama_engine import LlamaEngine
from models.engine.speculative import Drafter, draft_room
from prompts.sets import load_prompt_set

MAX_TOKENS = 32


def _prompts() -> list[list[dict[str, str]]]:
    """Every prompt of the general and copy-heavy sets (more than 50)."""
    sets = [load_prompt_set("general"), load_prompt_set("heavy-copy")]
    return [list(p.messages) for s in sets for p in s.prompts]


async def _generate(
    engine: LlamaEngine, prompts: list[list[int]], params: GenerationParams
) -> list[tuple[str, list[tuple[bytes, float]], Finish]]:
    """One prompt after the other: text, (token bytes, logprob) and Finish of each."""
    results = []
    for prompt in prompts:
        [stream] = await engine.submit(prompt, params)
        text, logprobs = "", []
        async for event in stream:
            if isinstance(event, Piece):
                text += event.text
                logprobs += [(e.bytes, e.logprob) for e in event.logprobs]
            else:
                results.append((text, logprobs, event))
    return results


def _run(speculative: bool, logprobs: int | None, prompts: list) -> tuple[list, EngineStats]:
    """The prompts through a fresh engine, with or without speculation."""
    config = EngineConfig(parallel=1, n_ctx=1024, n_threads=1, speculative=speculative)
    engine = LlamaEngine(DEFAULT_MODEL, config)
    try:
        tokens = [engine.chat_prompt(m) for m in prompts]
        params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0, logprobs=logprobs)
        return asyncio.run(_generate(engine, tokens, params)), engine.stats()
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("logprobs", "count"), [(None, None), (2, 6)], ids=["all-prompts", "logprobs"]
)
def test_greedy_output_is_the_same_with_and_without_speculation(
    logprobs: int | None, count: int | None
) -> None:
    """Same text, finish and logprobs for every prompt; drafts were made and some accepted.

    The prompts run one at a time: llama.cpp's CPU kernels are not batch-invariant (a prompt's
    greedy text can differ at 1 and 8 concurrent requests, with or without speculation), so
    the comparison holds the batch composition fixed; a slot's drafts verify in one decode.
    """
    prompts = _prompts()[-count:] if count else _prompts()
    plain, plain_stats = _run(False, logprobs, prompts)
    drafted, stats = _run(True, logprobs, prompts)
    assert len(plain) == len(prompts) and (count or len(prompts) >= 50)
    assert plain_stats.drafted_tokens == 0
    assert stats.accepted_tokens > 0 and stats.drafted_tokens >= stats.accepted_tokens
    for (text, lps, finish), (text2, lps2, finish2) in zip(plain, drafted, strict=True):
        assert text2 == text
        assert (finish2.reason, finish2.completion_tokens) == (
            finish.reason,
            finish.completion_tokens,
        )
        assert [b for b, _ in lps2] == [b for b, _ in lps]
        assert [p for _, p in lps2] == pytest.approx([p for _, p in lps], abs=1e-3)
    assert stats.generated_tokens == plain_stats.generated_tokens
    assert stats.decode_steps < plain_stats.decode_steps


def test_drafter_proposes_what_followed_the_latest_match() -> None:
    """The tokens after the latest earlier occurrence of the last 3 (then 2) tokens."""
    drafter = Drafter([1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 1, 2, 3], max_draft=4)
    assert drafter.draft(room=10) == [7, 8, 1, 2]
    assert drafter.draft(room=1) == [7]
    drafter.extend([6])
    assert drafter.draft(room=10) == []  # (2, 3, 6) and (3, 6) were never seen
    drafter.extend([4])
    assert drafter.draft(room=10) == []
    assert Drafter([5, 6, 7, 5, 6], max_draft=4).draft(room=4) == [7, 5, 6]


def test_drafter_shrinks_then_pauses_after_misses() -> None:
    """A rejected draft halves the length; repeated misses pause drafting for a while."""
    drafter = Drafter([1, 2, 3, 1, 2, 3, 1, 2], max_draft=8)
    assert len(drafter.draft(room=8)) > 1
    for _ in range(4):
        drafter.update(drafted=drafter.limit, accepted=0)
    assert drafter.limit == 1
    drafter.update(drafted=1, accepted=0)
    assert drafter.draft(room=8) == []  # paused
    drafter.update(drafted=1, accepted=1)
    assert drafter.limit == 2


def test_drafts_only_fill_a_small_step() -> None:
    """Up to step_rows rows in all: one slot of four rows drafts three, four slots none, and
    nothing while a prompt is prefilled."""
    assert draft_room(1, prefilling=False, step_rows=4) == 3
    assert draft_room(2, prefilling=False, step_rows=4) == 2
    assert draft_room(4, prefilling=False, step_rows=4) == 0
    assert draft_room(9, prefilling=False, step_rows=4) == 0
    assert draft_room(1, prefilling=True, step_rows=4) == 0

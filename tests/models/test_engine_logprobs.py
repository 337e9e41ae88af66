"""Logprobs from the engine against a softmax of the raw logits of the same tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest
from llama_cpp import Llama

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, Finish, GenerationParams, Piece, TokenLogprob
from models.engine.llama_engine import LlamaEngine
from models.engine.text import StopTextAssembler
from models.errors import InvalidRequest


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    """The default model with two slots."""
    engine = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=2, n_ctx=512))
    yield engine
    engine.close()


async def _collect(engine: LlamaEngine, prompt: list[int], params: GenerationParams) -> tuple:
    """Text, logprob entries and Finish of one generation."""
    [stream] = await engine.submit(prompt, params)
    text, entries = "", list[TokenLogprob]()
    async for event in stream:
        if isinstance(event, Piece):
            text += event.text
            entries += event.logprobs
        else:
            assert isinstance(event, Finish)
            return text, entries, event
    raise AssertionError("no Finish")


def _greedy_reference(prompt: list[int], steps: int) -> tuple[list[int], np.ndarray]:
    """Greedy tokens and log-softmax rows from llama-cpp-python's own logits, step by step."""
    llm = Llama(
        str(DEFAULT_MODEL.gguf_path()), n_ctx=512, logits_all=True, flash_attn=True, verbose=False
    )
    tokens, rows = [], []
    try:
        llm.eval(prompt)
        for _ in range(steps):
            row = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
            row -= row.max()
            rows.append(row - np.log(np.exp(row).sum()))
            tokens.append(int(np.argmax(row)))
            llm.eval([tokens[-1]])
    finally:
        llm.close()
    return tokens, np.array(rows)


def test_greedy_logprobs_match_a_softmax_of_the_raw_logits(engine: LlamaEngine) -> None:
    """Each token's logprob and its top 5 match log-softmax of the logits; greedy picks top-1."""
    prompt = engine.chat_prompt([{"role": "user", "content": "Name three fruits."}])
    params = GenerationParams(max_tokens=16, temperature=0, logprobs=5)
    text, entries, finish = asyncio.run(_collect(engine, prompt, params))
    assert len(entries) == finish.completion_tokens > 0
    assert b"".join(e.bytes for e in entries).decode() == text
    tokens, reference = _greedy_reference(prompt, len(entries))
    for row, entry, token in zip(reference, entries, tokens, strict=True):
        assert entry.bytes == engine._piece(token)
        assert entry.logprob == pytest.approx(row[token], abs=1e-4)
        assert len(entry.top) == 5
        assert entry.top[0][1] == entry.bytes and entry.top[0][2] == entry.logprob  # greedy
        assert [t[2] for t in entry.top] == sorted((t[2] for t in entry.top), reverse=True)
        best = np.sort(row)[::-1][:5]
        assert [t[2] for t in entry.top] == pytest.approx(list(best), abs=1e-4)


def test_sampled_tokens_carry_logprobs_and_none_asked_none_given(engine: LlamaEngine) -> None:
    """At temperature 1 every token still has a logprob <= 0; without logprobs, none come."""
    prompt = engine.text_prompt("Once upon a time")
    sampled = GenerationParams(max_tokens=12, temperature=1.0, seed=7, logprobs=0)
    _, entries, finish = asyncio.run(_collect(engine, prompt, sampled))
    assert len(entries) == finish.completion_tokens
    assert all(e.logprob <= 0 and e.top == () for e in entries)
    plain = GenerationParams(max_tokens=12, temperature=0)
    _, none, _ = asyncio.run(_collect(engine, prompt, plain))
    assert none == []


def test_stop_string_drops_the_cut_tokens_logprobs(engine: LlamaEngine) -> None:
    """Tokens cut by a stop string lose their entries; the text's entries remain, in order."""
    prompt = engine.text_prompt("1, 2, 3, 4, 5,")
    params = GenerationParams(max_tokens=16, temperature=0, logprobs=1)
    full, full_entries, _ = asyncio.run(_collect(engine, prompt, params))
    assert " 7" in full
    stopped = GenerationParams(max_tokens=16, temperature=0, logprobs=1, stop=(" 7",))
    text, entries, finish = asyncio.run(_collect(engine, prompt, stopped))
    assert finish.reason == "stop" and text == full[: full.index(" 7")]
    assert [e.bytes for e in entries] == [e.bytes for e in full_entries[: len(entries)]]
    assert [e.logprob for e in entries] == pytest.approx(
        [e.logprob for e in full_entries[: len(entries)]], abs=1e-3
    )
    assert "".join(e.token for e in entries) == text


def test_out_of_range_top_logprobs_is_refused(engine: LlamaEngine) -> None:
    """logprobs above 20 or below 0 is an InvalidRequest at submit."""
    prompt = engine.text_prompt("Hi")
    for k in (-1, 21):
        with pytest.raises(InvalidRequest, match="logprobs"):
            asyncio.run(engine.submit(prompt, GenerationParams(max_tokens=1, logprobs=k)))


def test_assembler_entries_follow_split_characters_and_held_text() -> None:
    """An entry waits for its character's last byte and for held-back stop-string text."""
    assembler: StopTextAssembler[str] = StopTextAssembler(("STOP",))
    euro = "€".encode()
    assert assembler.feed(euro[:2], "a") == "" and assembler.entries() == []
    assert assembler.feed(euro[2:], "b") == "€" and assembler.entries() == ["a", "b"]
    assert assembler.feed(b" S", "c") == " " and assembler.entries() == []
    assert assembler.feed(b"T", "d") == "" and assembler.entries() == []
    assert assembler.feed(b"x", "e") == "STx" and assembler.entries() == ["c", "d", "e"]
    assert assembler.feed(b"ST", "f") == "" and assembler.feed(b"OP!", "g") == ""
    assert assembler.stopped and assembler.entries() == []

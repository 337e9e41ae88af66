"""The engine in-process with the real model: text assembly, config checks, refused requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, Finish, GenerationParams, Piece
from models.engine.llama_engine import LlamaEngine
from models.engine.text import StopTextAssembler
from models.errors import ContextLengthExceeded, InvalidRequest


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    """The default model with two slots and no waiting room."""
    engine = LlamaEngine(DEFAULT_MODEL, EngineConfig(parallel=2, max_queue=0, n_ctx=256))
    yield engine
    engine.close()


def test_stop_string_split_across_pieces() -> None:
    """A stop string spread over several token pieces is cut; text before it is kept."""
    assembler = StopTextAssembler(("END",))
    out = [assembler.feed(piece) for piece in (b"hello E", b"N", b"D and more")]
    assert "".join(out) == "hello "
    assert assembler.stopped


def test_utf8_character_split_across_tokens() -> None:
    """Bytes of one character arriving in two tokens come out as that character, once."""
    assembler = StopTextAssembler(())
    euro = "€".encode()
    assert assembler.feed(euro[:2]) == ""
    assert assembler.feed(euro[2:]) == "€"
    assert assembler.flush() == ""


def test_batch_must_hold_every_slot() -> None:
    """n_batch below parallel is refused before any model loads."""
    with pytest.raises(ValueError, match="n_batch"):
        EngineConfig(parallel=16, n_batch=8)


def test_bad_grammar_is_refused_and_never_holds_a_place(engine: LlamaEngine) -> None:
    """A grammar llama.cpp cannot parse is an InvalidRequest that leaves the queue as it was."""
    prompt = engine.tokenize("Hello")

    async def scenario() -> str:
        for _ in range(10):  # far more than parallel + max_queue
            with pytest.raises(InvalidRequest):
                engine.submit(prompt, GenerationParams(max_tokens=2, grammar="root ::= ("))
        assert engine.stats().waiting == 0
        text = ""
        async for event in engine.submit(prompt, GenerationParams(max_tokens=4, temperature=0)):
            if isinstance(event, Piece):
                text += event.text
            else:
                assert isinstance(event, Finish) and event.reason == "length"
        return text

    assert asyncio.run(scenario())


def test_context_overflow_is_refused(engine: LlamaEngine) -> None:
    """Prompt plus max_tokens beyond the per-request context raises at submit."""
    with pytest.raises(ContextLengthExceeded):
        engine.check_fit(200, 100)
    assert engine.check_fit(200, None) == engine.n_ctx - 200

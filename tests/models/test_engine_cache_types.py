"""KV cache types (-ctk/-ctv): a quantised cache answers and holds a prompt in half the bytes."""

from __future__ import annotations

import asyncio

import pytest

from models.catalog import DEFAULT_MODEL
from models.engine import EngineConfig, GenerationParams
from models.engine.base import KvType
from models.engine.llama_engine import LlamaEngine
from models.errors import EngineFailure
from tests.models.streams import drain

GREEDY = GenerationParams(max_tokens=16, temperature=0)


def _saved_bytes(cache_type: KvType) -> tuple[int, str, dict[str, object]]:
    """Host-cache bytes of one prompt pushed out of the only slot, the answer, the engine's info."""
    config = EngineConfig(
        parallel=1, n_ctx=512, host_cache_mib=64, cache_type_k=cache_type, cache_type_v=cache_type
    )
    engine = LlamaEngine(DEFAULT_MODEL, config)
    try:

        async def answer(text: str) -> str:
            [stream] = await engine.submit(engine.text_prompt(text), GREEDY)
            return (await drain(stream))[0]

        said = asyncio.run(answer("The fox and the crow met at dawn by the river. " * 6))
        asyncio.run(answer("A different story about a whale."))  # the first goes to host RAM
        return engine.stats().host_cache_bytes, said, engine.info()
    finally:
        engine.close()


def test_a_q8_0_cache_answers_and_holds_a_prompt_in_about_half_the_bytes() -> None:
    """q8_0 stores 34 bytes per 32 values where f16 stores 64: the saved prompt shrinks to ~53 %."""
    f16_bytes, _, f16_info = _saved_bytes("f16")
    q8_bytes, said, q8_info = _saved_bytes("q8_0")
    assert f16_info["cache_type_k"] == "f16" and q8_info["cache_type_v"] == "q8_0"
    assert said.strip()
    assert f16_bytes > 0 and 0.45 < q8_bytes / f16_bytes < 0.65, (q8_bytes, f16_bytes)


def test_a_quantised_v_cache_without_flash_attention_is_refused_with_the_reason() -> None:
    """-ctv q8_0 -fa off: llama.cpp cannot build that context; the error says what to change."""
    config = EngineConfig(parallel=1, n_ctx=256, cache_type_v="q8_0", flash_attn="off")
    with pytest.raises(EngineFailure, match="quantised V cache needs flash attention on"):
        LlamaEngine(DEFAULT_MODEL, config)

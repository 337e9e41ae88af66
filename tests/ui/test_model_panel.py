"""The model panel: quantisation read from llama.cpp's description, the real server's facts."""

from __future__ import annotations

import asyncio
import re

from tests.conftest import Server
from ui.client import ModelCard, ServerClient
from ui.model_panel import describe, facts, quantisation


def test_quantisation_comes_from_the_description_then_the_file_name() -> None:
    """llama.cpp's "llama 135M Q4_1" names it; else the file name; else "unknown"."""
    assert quantisation({"description": "llama 135M Q4_1"}) == "Q4_1"
    assert quantisation({"description": "llama ?B", "file_name": "m-q4_k_m.gguf"}) == "Q4_K_M"
    assert quantisation({"description": "qwen2 1.5B BF16"}) == "BF16"
    assert quantisation({"file_name": "model.gguf"}) == "unknown"


def test_the_panel_shows_the_served_model_facts(server: Server) -> None:
    """From the real /v1/models: id, quantisation, context, slots, file and its SHA-256."""
    cards = asyncio.run(ServerClient(server.url, server.api_key, timeout=60).models())
    card = cards[0]
    sha = card.meta["file_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    rows = facts(card)
    assert all(f"**{k}:** {v}" in describe(card) for k, v in rows.items())
    assert rows["Model"] == f"`{card.id}`"
    assert rows["Quantisation"] == "Q4_1"  # the default SmolLM2-135M-Instruct GGUF
    assert rows["Context"].startswith("2048 tokens per request")
    assert rows["Slots"].startswith("8 at once")  # the fixture's --parallel 8
    assert rows["KV cache"].endswith("cells (K f16, V f16)")
    assert rows["SHA-256"] == f"`{sha}`"
    assert card.meta["file_name"] in rows["File"]


def test_no_model_says_so() -> None:
    """No card (server down): a note, not a table."""
    assert "not reachable" in describe(None)
    assert "unknown" in describe(ModelCard("m", 512, {}))

"""The LLM engine: the interface the server talks to, and its llama.cpp implementation."""

from models.engine.base import (
    Engine,
    EngineConfig,
    EngineStats,
    Finish,
    GenerationParams,
    Piece,
    TokenLogprob,
    TokenStream,
)

__all__ = [
    "Engine",
    "EngineConfig",
    "EngineStats",
    "Finish",
    "GenerationParams",
    "Piece",
    "TokenLogprob",
    "TokenStream",
]

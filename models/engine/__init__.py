"""The LLM engine: the interface the server talks to, and its llama.cpp implementation."""

from models.engine.base import Engine, EngineStats, Finish, GenerationParams, Piece, TokenStream

__all__ = ["Engine", "EngineStats", "Finish", "GenerationParams", "Piece", "TokenStream"]

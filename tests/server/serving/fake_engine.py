"""A scripted Engine for unit tests of the serving layer (no llama.cpp)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.catalog import ModelSpec
from models.engine import EngineConfig, EngineStats, Finish, GenerationParams, Piece
from models.engine.base import TokenLogprob


@dataclass
class Script:
    """What the fake answers next: pieces, a finish reason, and an optional gate."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", " world"])
    reason: str = "stop"
    stop_sequence: str | None = None
    gate: threading.Event | None = None  # the answer starts only once this is set


class FakeStream:
    """Yields the scripted pieces, then a Finish."""

    def __init__(self, script: Script, params: GenerationParams, prompt: int) -> None:
        self.script = script
        self.params = params
        self.prompt = prompt
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[Piece | Finish]:
        return self._events()

    async def __anext__(self) -> Piece | Finish:  # pragma: no cover - iterated via __aiter__
        raise StopAsyncIteration

    async def _events(self) -> AsyncIterator[Piece | Finish]:
        if self.script.gate is not None:
            while not self.script.gate.is_set():
                await asyncio.to_thread(self.script.gate.wait, 0.05)
        for text in self.script.pieces:
            logprobs: tuple[TokenLogprob, ...] = ()
            if self.params.logprobs is not None:
                top = tuple((f"{text}{i}", b"x", -1.0 - i) for i in range(self.params.logprobs))
                logprobs = (TokenLogprob(text, text.encode(), -0.5, top),)
            yield Piece(text, logprobs)
        n = len(self.script.pieces)
        reason = self.script.reason
        stop = self.script.stop_sequence
        yield Finish(reason, self.prompt, n, 0, stop_sequence=stop)  # type: ignore[arg-type]

    def cancel(self) -> None:
        """Remember the cancel."""
        self.cancelled = True


class FakeEngine:
    """Implements the Engine protocol with scripted answers; records what it was asked."""

    def __init__(self, spec: ModelSpec, config: EngineConfig) -> None:
        self.model_id = spec.id
        self.n_ctx = config.n_ctx or 2048
        self.file_sha256 = "0" * 64
        self.script = Script()
        self.submitted: list[GenerationParams] = []
        self.prompts: list[list[dict[str, Any]]] = []
        self.tools_seen: list[list[dict[str, Any]] | None] = []
        self.streams: list[FakeStream] = []
        self.tools_in_template = False

    def info(self) -> dict[str, Any]:
        """Facts."""
        return {"id": self.model_id, "n_ctx": self.n_ctx}

    def chat_prompt(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """One token per message."""
        self.prompts.append(messages)
        self.tools_seen.append(tools)
        return list(range(len(messages)))

    def supports_tools(self) -> bool:
        """As configured."""
        return self.tools_in_template

    def text_prompt(self, text: str) -> list[int]:
        """One token per character."""
        return [ord(c) for c in text]

    def detokenize(self, tokens: list[int]) -> str:
        """The inverse of text_prompt."""
        return "".join(chr(t) for t in tokens)

    async def submit(
        self, prompt_tokens: list[int], params: GenerationParams, n: int = 1
    ) -> Sequence[FakeStream]:
        """n scripted streams."""
        self.submitted.append(params)
        streams = [FakeStream(self.script, params, len(prompt_tokens)) for _ in range(n)]
        self.streams.extend(streams)
        return streams

    def stalled_for(self) -> float:
        """Never stalled."""
        return 0.0

    def stats(self) -> EngineStats:
        """Empty stats."""
        return EngineStats()

    def close(self) -> None:
        """Nothing to free."""

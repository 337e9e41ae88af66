"""What runs inside the Ray Serve replicas: an LLM engine, and the predictors."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from models.catalog import ModelSpec
from models.engine.base import EngineConfig, Finish, GenerationParams, Piece, TokenStream
from models.errors import EngineUnavailable, ModelError

log = logging.getLogger(__name__)

# The first item of every generate() stream: ("accepted", replica id) or ("refused", error).
ACCEPTED = "accepted"
REFUSED = "refused"
Batch = list[tuple[int, Piece | Finish]]


def app_name() -> str:
    """The Serve application this replica belongs to."""
    try:
        from ray import serve

        return str(serve.get_replica_context().app_name) or "myllama"
    except Exception:
        return "myllama"


def replica_name() -> str:
    """This Serve replica's unique id (the process id outside Serve)."""
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # not inside a replica (unit use)
        return f"pid-{os.getpid()}"


def node_address() -> str:
    """The Ray node this process runs on."""
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:
        return "local"


async def merged(streams: Sequence[TokenStream]) -> AsyncIterator[Batch]:
    """The events of n streams as batches of (choice, event): whatever is ready, at once."""
    queue: asyncio.Queue[tuple[int, Piece | Finish]] = asyncio.Queue()

    async def pump(index: int, stream: TokenStream) -> None:
        async for event in stream:
            queue.put_nowait((index, event))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(streams)
    try:
        while remaining:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            remaining -= sum(isinstance(event, Finish) for _, event in batch)
            yield batch
    finally:
        for stream in streams:
            stream.cancel()  # a cancelled call (client gone) frees the slots here
        for task in tasks:
            task.cancel()


class EngineReplica:
    """One replica of a model: a llama.cpp engine in this process, its threads its CPUs."""

    def __init__(self, spec: ModelSpec, config: EngineConfig) -> None:
        from models.engine.pool import llama_engine

        self.engine = llama_engine(spec, config)
        self.watchdog_s = config.watchdog_s
        self.replica = replica_name()
        self.pid = os.getpid()
        self.node = node_address()
        from server.ray.board import POST_INTERVAL_S, post_every

        self._posting = post_every(POST_INTERVAL_S, self.snapshot, app_name())

    async def generate(
        self, prompt_tokens: list[int], params: GenerationParams, n: int
    ) -> AsyncIterator[tuple[str, Any] | Batch]:
        """("accepted", replica) then batches of events; or ("refused", the engine's error)."""
        try:
            streams = await self.engine.submit(prompt_tokens, params, n)
        except ModelError as exc:
            yield (REFUSED, exc)
            return
        yield (ACCEPTED, self.replica)
        async for batch in merged(streams):
            yield batch

    def info(self) -> dict[str, Any]:
        """The engine's static facts, with the id, sha256 and context the proxy mirrors."""
        return {
            **self.engine.info(),
            "model_id": self.engine.model_id,
            "file_sha256": self.engine.file_sha256,
            "n_ctx_seq": self.engine.n_ctx,
            "supports_tools": self.supports_tools(),
        }

    def supports_tools(self) -> bool:
        """Whether the model's chat template renders tools (False for engines without it)."""
        check = getattr(self.engine, "supports_tools", None)
        return bool(check()) if check is not None else False

    def snapshot(self) -> dict[str, Any]:
        """This replica's counters and health, posted to the board every second."""
        return {
            "replica": self.replica,
            "pid": self.pid,
            "node": self.node,
            "model": self.engine.model_id,
            "stats": self.engine.stats(),
            "stalled_for": self.engine.stalled_for(),
            "at": time.time(),
        }

    def check_health(self) -> None:
        """Serve's health check: a stalled engine gets this replica replaced."""
        stalled = self.engine.stalled_for()
        if stalled > self.watchdog_s:
            raise EngineUnavailable(f"the engine made no progress for {stalled:.0f} s")

    def __del__(self) -> None:
        posting = getattr(self, "_posting", None)
        if posting is not None:
            posting.set()
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()


class PredictorsReplica:
    """One replica of the classical predictors (champions or artefacts), scaled on its own."""

    def __init__(self, tracking_uri: str, predictors_dir: Path) -> None:
        from models.predictors.registry import PredictorRegistry

        self.registry = PredictorRegistry.load(tracking_uri, predictors_dir)

    def describe(self) -> dict[str, Any]:
        """Every predictor's card and state (the ingress validates records itself)."""
        return {
            "cards": {p.name: p.card() for p in self.registry.predictors.values()},
            "states": self.registry.states(),
        }

    def predict(self, name: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Label and probabilities for validated records."""
        return self.registry.get(name).predict(records)

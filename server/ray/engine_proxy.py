"""An Engine whose work runs on Ray Serve replicas: same interface, same errors, same cancel."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from models.engine.base import Engine, EngineStats, Finish, GenerationParams, Piece, TokenStream
from models.errors import EngineUnavailable, ModelError, QueueFull
from server.ray.replicas import REFUSED

log = logging.getLogger(__name__)

SUBMIT_TRIES = 3  # a replica that dies before accepting a request is skipped this many times
RETRY_WAIT_S = 0.2


def model_error(exc: BaseException) -> ModelError | None:
    """The models-layer error inside a Ray error, if there is one."""
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the replica's exception
    if isinstance(cause, ModelError):
        return cause
    if isinstance(exc, ModelError):
        return exc
    return model_error(exc.__cause__) if exc.__cause__ is not None else None


def _backpressure(exc: BaseException) -> bool:
    from ray.serve.exceptions import BackPressureError

    return isinstance(exc, BackPressureError)


class RemoteStream:
    """One choice of a remote request: pieces as they arrive, then its Finish."""

    def __init__(self, request: RemoteRequest, index: int) -> None:
        self._request = request
        self._index = index
        self.events: asyncio.Queue[Piece | Finish] = asyncio.Queue()
        self.finished = False
        self.delivered_finish = False
        self.cancelled = False
        self.pieces = 0

    def __aiter__(self) -> RemoteStream:
        return self

    async def __anext__(self) -> Piece | Finish:
        if self.delivered_finish:
            raise StopAsyncIteration
        item = await self.events.get()
        if isinstance(item, Finish):
            self.delivered_finish = True
        return item

    def put(self, item: Piece | Finish) -> None:
        """Hand over an event from the replica (nothing after the Finish)."""
        if self.finished:
            return
        if isinstance(item, Finish):
            self.finished = True
        else:
            self.pieces += 1
        self.events.put_nowait(item)

    def cancel(self) -> None:
        """Stop this choice; the replica drops the request once every choice is stopped."""
        if not self.finished and not self.cancelled:
            self.cancelled = True
            self._request.choice_cancelled()


class RemoteRequest:
    """n choices of one prompt, fed by one streaming call to an engine replica."""

    def __init__(
        self, engine: RemoteEngine, prompt: list[int], params: GenerationParams, n: int
    ) -> None:
        self.engine = engine
        self.prompt = prompt
        self.params = params
        self.streams = [RemoteStream(self, i) for i in range(n)]
        self.replica: str | None = None
        self._call: Any = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Submit to a replica; the engine's refusal is raised here as the same error."""
        self._call = await self._open()
        self._pump = asyncio.create_task(self._run())

    async def _open(self) -> Any:
        """A streaming call accepted by a replica (a replica that fails first is skipped)."""
        last: BaseException | None = None
        for attempt in range(SUBMIT_TRIES):
            call = self.engine.streaming.generate.remote(
                self.prompt, self.params, len(self.streams)
            )
            try:
                kind, value = await call.__anext__()
            except Exception as exc:
                error = model_error(exc)
                if error is not None:
                    raise error from None
                if _backpressure(exc):
                    raise QueueFull(f"Every replica of {self.engine.model_id!r} is busy.") from exc
                log.warning("engine replica failed before accepting (try %d): %s", attempt + 1, exc)
                last = exc
                await asyncio.sleep(RETRY_WAIT_S * (attempt + 1))
                continue
            if kind == REFUSED:
                raise value
            self.replica = str(value)
            return call
        raise EngineUnavailable(
            f"No replica of {self.engine.model_id!r} could take the request ({last}); retry."
        )

    def _untouched(self) -> bool:
        """Nothing delivered and nothing stopped yet: the request can move to another replica."""
        return all(s.pieces == 0 and not s.finished and not s.cancelled for s in self.streams)

    async def _run(self) -> None:
        """Dispatch the replica's batches; if it dies before a token was sent, move to another
        replica, else end the open choices with a clean error."""
        while True:
            try:
                async for batch in self._call:
                    for index, event in batch:
                        self.streams[index].put(event)
            except asyncio.CancelledError:
                self._end("cancelled", None)
                raise
            except Exception as exc:
                if all(s.cancelled or s.finished for s in self.streams):
                    self._end("cancelled", None)
                    return
                if self._untouched():
                    log.warning(
                        "replica %s failed before a token; resubmitting: %s", self.replica, exc
                    )
                    try:
                        self._call = await self._open()
                    except ModelError as error:
                        self._end("error", str(error))
                        return
                    continue
                log.warning("engine replica %s failed mid-generation: %s", self.replica, exc)
                self._end("error", f"the engine replica serving this request failed ({exc})")
                return
            self._end("error", "the engine replica ended the stream early")
            return

    def _end(self, reason: str, error: str | None) -> None:
        """Finish every open choice (a replica that died, or a cancelled call)."""
        for stream in self.streams:
            stream.put(
                Finish(
                    reason,  # type: ignore[arg-type]
                    prompt_tokens=len(self.prompt),
                    completion_tokens=stream.pieces,
                    error=error,
                )
            )

    def choice_cancelled(self) -> None:
        """Cancel the remote call once no choice is still wanted (the replica frees the slots)."""
        if all(s.cancelled or s.finished for s in self.streams) and self._call is not None:
            self._call.cancel()
            if self._pump is not None:
                self._pump.cancel()


def _sum_stats(snapshots: list[dict[str, Any]]) -> EngineStats:
    """The replicas' counters and gauges added up."""
    total = EngineStats()
    for snap in snapshots:
        stats: EngineStats = snap["stats"]
        for f in fields(EngineStats):
            value = getattr(stats, f.name)
            if isinstance(value, dict):
                merged = getattr(total, f.name)
                for key, count in value.items():
                    merged[key] = merged.get(key, 0) + count
            elif isinstance(value, int | float):
                setattr(total, f.name, getattr(total, f.name) + value)
    return total


class RemoteEngine:
    """The Engine interface over a Ray Serve deployment of EngineReplica; prompts are rendered
    and tokenized here, by a small engine of the same model (no round trip per request)."""

    def __init__(
        self, handle: Any, deployment: str, tokenizer: Engine, board: Any, refresh_s: float = 1.0
    ) -> None:
        self.handle = handle
        self.board = board
        self.tokenizer = tokenizer
        self.deployment = deployment
        self.streaming = handle.options(stream=True)
        facts: dict[str, Any] = handle.info.remote().result()
        self.model_id: str = facts["model_id"]
        self.n_ctx: int = int(facts["n_ctx_seq"])
        self.file_sha256: str = facts["file_sha256"]
        self._facts = facts
        self._snapshots: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._refresh_s = refresh_s
        self.refresh()
        self._refresher = threading.Thread(
            target=self._refresh_loop, name=f"ray-stats-{deployment}", daemon=True
        )
        self._refresher.start()

    # ---- the Engine interface ------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The model's facts (from a replica) and the replicas serving it now."""
        replicas = [
            {"replica": s["replica"], "pid": s["pid"], "node": s["node"]} for s in self.snapshots()
        ]
        facts = {k: v for k, v in self._facts.items() if k not in ("model_id", "n_ctx_seq")}
        return {**facts, "ray": {"deployment": self.deployment, "replicas": replicas}}

    def supports_tools(self) -> bool:
        """Whether the model's chat template renders tools."""
        return bool(self._facts.get("supports_tools", False))

    def chat_prompt(self, messages: list[dict[str, Any]], *args: Any, **kwargs: Any) -> list[int]:
        """Render and tokenize with the model's own template (call off the event loop)."""
        return self.tokenizer.chat_prompt(messages, *args, **kwargs)

    def text_prompt(self, text: str) -> list[int]:
        """Tokenize a completion prompt (call off the event loop)."""
        return self.tokenizer.text_prompt(text)

    def detokenize(self, tokens: list[int]) -> str:
        """The text of token ids."""
        text: str = self.tokenizer.detokenize(tokens)  # type: ignore[attr-defined,unused-ignore]
        return text

    async def submit(
        self, prompt_tokens: list[int], params: GenerationParams, n: int = 1
    ) -> Sequence[TokenStream]:
        """Queue n choices on one replica; its refusal is raised here as the same error."""
        request = RemoteRequest(self, list(prompt_tokens), params, n)
        await request.start()
        return request.streams

    def stalled_for(self) -> float:
        """The least stalled replica's seconds without progress (0 while one is healthy)."""
        snaps = self.snapshots()
        return min((float(s["stalled_for"]) for s in snaps), default=0.0)

    def stats(self) -> EngineStats:
        """Every replica's counters and gauges added up (per replica: snapshots())."""
        return _sum_stats(self.snapshots())

    def close(self) -> None:
        """Stop refreshing and free the tokenizer (the replicas belong to Ray Serve)."""
        self._stop.set()
        self.tokenizer.close()

    # ---- per replica ---------------------------------------------------------------

    def snapshots(self) -> list[dict[str, Any]]:
        """The latest snapshot of each live replica."""
        with self._lock:
            return list(self._snapshots)

    def refresh(self) -> None:
        """Read this model's replicas' latest snapshots from the board."""
        import ray

        try:
            found = ray.get(self.board.read.remote(), timeout=5)
        except Exception as exc:
            log.debug("reading the replica board failed: %s", exc)
            return
        mine = (s for s in found if s["model"] == self.model_id)
        snaps = sorted(mine, key=lambda s: s["replica"])
        with self._lock:
            self._snapshots = snaps

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._refresh_s):
            self.refresh()

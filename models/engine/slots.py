"""The worker's records: a submitted request, its stream, a slot and a run of batch tokens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from models.engine.base import Finish, GenerationParams, Piece, TokenLogprob
from models.engine.sampling import Sampler
from models.engine.speculative import Drafter
from models.engine.text import StopTextAssembler


class GenerationStream:
    """Async stream of one request's pieces, ending with a Finish; cancel() stops it."""

    def __init__(self, wake: Callable[[], None], request: Request) -> None:
        self._wake = wake
        self._request = request

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> Piece | Finish:
        if self._request.delivered_finish:
            raise StopAsyncIteration
        item = await self._request.events.get()
        if isinstance(item, Finish):
            self._request.delivered_finish = True
        return item

    def cancel(self) -> None:
        """Ask the engine to drop this request at its next step (no-op once finished)."""
        if not self._request.delivered_finish and not self._request.cancelled:
            self._request.cancelled = True
            self._wake()


@dataclass(eq=False)
class Request:
    """A submitted request as the worker sees it."""

    prompt: list[int]
    params: GenerationParams
    max_tokens: int
    sampler: Sampler
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[Piece | Finish] = field(default_factory=asyncio.Queue)
    leader: Request | None = None  # the first choice of the same prompt, which prefills it
    prefilled: bool = False
    done: bool = False
    cancelled: bool = False
    delivered_finish: bool = False
    submitted_at: float = field(default_factory=time.monotonic)
    queued_s: float | None = None  # set when admitted to a slot

    def waits_for_leader(self) -> bool:
        """True while this choice's leader is still queued or prefilling the shared prompt."""
        leader = self.leader
        return leader is not None and not leader.prefilled and not leader.done


class Outbox:
    """The events of one worker step, handed to each event loop in one call.

    One wake-up per step instead of one per token: the loop then handles the step's tokens
    together while the next batch decodes, instead of taking the GIL back and forth with the
    worker while it samples the other slots.
    """

    def __init__(self) -> None:
        self._events: list[tuple[Request, Piece | Finish]] = []

    def put(self, request: Request, event: Piece | Finish) -> None:
        """Queue an event for the request's stream."""
        self._events.append((request, event))

    def flush(self) -> None:
        """Deliver the queued events, in order, one call per event loop (thread-safe)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Request, Piece | Finish]]] = {}
        for request, event in self._events:
            by_loop.setdefault(request.loop, []).append((request, event))
        self._events = []
        for loop, events in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown
                loop.call_soon_threadsafe(_deliver, events)


def _deliver(events: list[tuple[Request, Piece | Finish]]) -> None:
    for request, event in events:
        request.events.put_nowait(event)


@dataclass(eq=False)
class Slot:
    """One llama.cpp sequence: the tokens in its KV cache and the request using it."""

    seq_id: int
    cached: list[int] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)  # a cell id per cached token (ids shared)
    request: Request | None = None
    pending: list[int] = field(default_factory=list)
    reused: int = 0
    generated: int = 0
    last_token: int = -1
    logit_index: int = -1
    assembler: StopTextAssembler[TokenLogprob] | None = None
    drafter: Drafter | None = None
    released_at: float = 0.0  # when its last request ended (free slots are reused LRU)
    draft: list[int] = field(default_factory=list)

    def hold(self, tokens: list[int], cells: list[int]) -> None:
        """The slot's cache is now these tokens in these cells."""
        self.cached, self.cells = tokens, cells

    def grow(self, tokens: list[int], cells: Iterable[int]) -> None:
        """Tokens decoded into new cells at the end of the slot's cache."""
        self.cached.extend(tokens)
        self.cells.extend(cells)

    def take_over(self, other: Slot, cells: list[int]) -> None:
        """Run other's request here, its cells copied into `cells`; other is left idle, its
        cells a cached prefix like any finished request's."""
        self.hold(list(other.cached), cells)
        self.request, other.request = other.request, None
        self.pending, other.pending = other.pending, []
        self.reused, self.generated, self.last_token = (
            other.reused,
            other.generated,
            other.last_token,
        )
        self.assembler, self.drafter = other.assembler, other.drafter
        self.draft, self.logit_index = [], -1
        other.released_at = time.monotonic()

    def truncate(self, n: int) -> None:
        """Forget the cached tokens from position n on."""
        del self.cached[n:], self.cells[n:]

    def still_needs(self) -> int:
        """Cells the slot's request may still need beyond those it holds (0 when idle)."""
        request = self.request
        if request is None:
            return 0
        return len(self.pending) + request.max_tokens - self.generated


@dataclass(eq=False)
class Entry:
    """A run of one slot's tokens in the next batch."""

    slot: Slot
    tokens: list[int]
    start: int
    rows: int  # the last `rows` tokens get logits (a drafting slot: its token and every draft)

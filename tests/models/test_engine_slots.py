"""The worker's outbox: a step's events reach each stream in order, one loop call per step."""

from __future__ import annotations

import asyncio
import threading
from unittest import mock

from models.engine import Finish, GenerationParams, Piece
from models.engine.slots import Outbox, Request


def test_a_steps_events_arrive_in_order_with_one_wake_up_per_loop() -> None:
    """Events put from the worker thread arrive in each request's order after one flush, which
    wakes the loop once; nothing is sent before the flush."""

    async def scenario() -> tuple[list[list[Piece | Finish]], int, int]:
        loop = asyncio.get_running_loop()
        sampler = mock.Mock()  # the sampler is not used here
        a, b = (Request([1], GenerationParams(), 4, sampler, loop) for _ in range(2))
        outbox = Outbox()
        calls_before: list[int] = []
        with mock.patch.object(
            loop, "call_soon_threadsafe", wraps=loop.call_soon_threadsafe
        ) as spy:

            def worker() -> None:
                outbox.put(a, Piece("one"))
                outbox.put(b, Piece("uno"))
                outbox.put(a, Piece(" two"))
                outbox.put(b, Finish("stop", 1, 1, 0))
                calls_before.append(spy.call_count)
                outbox.flush()

            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()  # the loop waits here: the events can only arrive after it
            events = [
                [await a.events.get(), await a.events.get()],
                [await b.events.get(), await b.events.get()],
            ]
            return events, calls_before[0], spy.call_count

    events, before, after = asyncio.run(scenario())
    assert events == [[Piece("one"), Piece(" two")], [Piece("uno"), Finish("stop", 1, 1, 0)]]
    assert (before, after) == (0, 1)

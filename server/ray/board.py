"""A small Ray actor where engine replicas post their counters: read even when every slot is busy
(a Serve call to a full replica would wait for a free slot)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import ray

log = logging.getLogger(__name__)

NAMESPACE = "myllama"
POST_INTERVAL_S = 1.0
MAX_AGE_S = 3.5  # a replica that has not posted for this long is gone


@ray.remote(num_cpus=0)
class ReplicaBoard:
    """The latest snapshot of each engine replica, by replica id."""

    def __init__(self) -> None:
        self.snapshots: dict[str, dict[str, Any]] = {}

    def post(self, snapshot: dict[str, Any]) -> None:
        """Keep a replica's latest snapshot."""
        self.snapshots[snapshot["replica"]] = snapshot

    def read(self, max_age_s: float = MAX_AGE_S) -> list[dict[str, Any]]:
        """The snapshots posted in the last `max_age_s` seconds (older ones are dropped)."""
        now = time.time()
        self.snapshots = {k: s for k, s in self.snapshots.items() if now - s["at"] <= max_age_s}
        return list(self.snapshots.values())


def board(app_name: str) -> Any:
    """The application's board (created by whoever asks first; it outlives a replica)."""
    return ReplicaBoard.options(  # type: ignore[attr-defined]
        name=f"{app_name}-replica-board",
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
    ).remote()


def remove_board(app_name: str) -> None:
    """Kill the application's board, if there is one."""
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(f"{app_name}-replica-board", namespace=NAMESPACE))


def post_every(interval_s: float, snapshot: Any, app_name: str) -> threading.Event:
    """Post `snapshot()` to the board every `interval_s` from a daemon thread; set the returned
    event to stop."""
    stop = threading.Event()
    target = board(app_name)

    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                target.post.remote(snapshot())
            except Exception as exc:  # the board is being replaced: try again next time
                log.debug("posting the snapshot failed: %s", exc)

    snapshot_now = snapshot()
    target.post.remote(snapshot_now)
    threading.Thread(target=loop, name="replica-board", daemon=True).start()
    return stop

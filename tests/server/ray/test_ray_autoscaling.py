"""Autoscaling on ongoing requests: `--min-replicas 1 --max-replicas 2` grows to 2 under load."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.ray.conftest import RayServer, ray_serving, replicas, wait_until

pytestmark = pytest.mark.ray
log = logging.getLogger(__name__)

SCALE = ["--min-replicas", "1", "--max-replicas", "2", "--target-ongoing-requests", "2"]
SCALE += ["--upscale-delay-s", "2", "--autoscale-look-back-s", "3"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, iris: tuple[str, Path]) -> Iterator[RayServer]:
    """One engine replica to start with, two at most."""
    work = tmp_path_factory.mktemp("ray-autoscale")
    with ray_serving(work, iris, SCALE, "ray-autoscale") as running:
        yield running


def _load(server: RayServer, stop: threading.Event) -> None:
    """Streams back to back until told to stop."""
    body = {"model": "smollm2-135m-instruct", "prompt": "1, 2, 3, 4,", "max_tokens": 64}
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            client.post(f"{server.v1}/completions", json=body, headers=server.headers())


def test_scales_from_one_to_two_replicas_under_load(server: RayServer) -> None:
    """8 clients against one replica (target 2 ongoing each): Ray adds the second replica."""
    wait_until(lambda: len(replicas(server)) == 1, 60, "one replica at rest")
    stop = threading.Event()
    clients = [threading.Thread(target=_load, args=(server, stop)) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        scaled = wait_until(lambda: len(replicas(server)) == 2, 180, "scaled to two replicas")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=120)
    log.info("autoscaled 1 -> 2 replicas %.1f s after the load began", scaled)
    print(f"autoscaled 1 -> 2 replicas {scaled:.1f} s after the load began")

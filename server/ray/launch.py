"""`myllama serve --ray`: start (or join) Ray, run the Serve application, stop it on a signal."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from server.ray.settings import RaySettings
from server.settings import ServerSettings

log = logging.getLogger(__name__)

# A local instance is one node on loopback: Ray's node address is 127.0.0.1 only when it does
# not look for a remotely reachable one (this switch is read when `ray` is imported).
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def start_ray(settings: ServerSettings, ray_settings: RaySettings) -> bool:
    """Join the cluster at --ray-address, or start a small local instance; True if started."""
    if ray_settings.ray_address is not None:
        import ray

        ray.init(address=ray_settings.ray_address, namespace="myllama")
        log.info("joined the Ray cluster at %s", ray_settings.ray_address)
        return False
    os.environ.update(LOOPBACK_ONLY)
    import ray

    from server.ray.deployments import cpus_needed

    cpus = ray_settings.ray_num_cpus or max(
        os.cpu_count() or 1, int(cpus_needed(settings, ray_settings) + 0.999)
    )
    ray.init(
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        num_cpus=cpus,
        object_store_memory=ray_settings.ray_object_store_mb * 1024 * 1024,
        namespace="myllama",
    )
    log.info("started a local Ray instance (%d CPUs) on 127.0.0.1", cpus)
    return True


def _descendants(root: int) -> set[int]:
    """Every process below `root` (read from /proc; empty where there is none)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _reap(pids: set[int], grace_s: float = 5.0) -> None:
    """SIGKILL what Ray left of the processes this server started (its agents can outlive
    ray.shutdown once their raylet is gone)."""
    deadline = time.monotonic() + grace_s
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            log.info("stopped Ray process %d left after shutdown", pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = stop or threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def serve_on_ray(settings: ServerSettings, ray_settings: RaySettings) -> int:
    """Serve the same API through Ray Serve until SIGINT/SIGTERM, then stop what was started."""
    stop = _stop_on_signals()
    started_at = time.monotonic()
    started = start_ray(settings, ray_settings)
    stop = _stop_on_signals(stop)  # again: Ray's core worker installs its own, which exits
    import ray
    from ray import serve

    from server.ray.board import remove_board
    from server.ray.deployments import APP_NAME, build_application

    try:
        serve.start(
            proxy_location="HeadOnly",
            http_options={"host": settings.host, "port": settings.port},
        )
        serve.run(
            build_application(settings, ray_settings),
            name=APP_NAME,
            route_prefix="/",
            blocking=False,
            logging_config={"enable_access_log": False},  # our own /metrics count the calls
        )
        low, high = ray_settings.replica_range()
        log.info(
            "Ray Serve up in %.1f s on http://%s:%d (engine replicas %s per model)",
            time.monotonic() - started_at,
            settings.host,
            settings.port,
            low if low == high else f"{low}..{high}",
        )
        while not stop.wait(1.0):
            pass
    finally:
        ours = _descendants(os.getpid()) if started else set()
        try:
            serve.delete(APP_NAME)
            remove_board(APP_NAME)
            if started:
                serve.shutdown()
        finally:
            if started:
                ray.shutdown()
                _reap(ours)
    return 0

"""A real `myllama serve` for one model on a free loopback port: timed to ready, its memory read."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from eval.tracking import EvalError

READY_TIMEOUT_S = 300.0


def rss_mb(pid: int) -> tuple[float | None, float | None]:
    """(current, peak) resident set size of a process in MiB, from /proc (None without /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values = {
        key: int(value.split()[0]) / 1024
        for key, _, value in (line.partition(":") for line in status.splitlines())
        if key in ("VmRSS", "VmHWM")
    }
    return values.get("VmRSS"), values.get("VmHWM")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    """A started server: where it listens, its process, how long it took to be ready."""

    url: str
    process: subprocess.Popen[bytes]
    ready_s: float

    def memory_mb(self) -> tuple[float | None, float | None]:
        """(current, peak) RSS of the server process."""
        return rss_mb(self.process.pid)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise EvalError(f"the server exited with {process.returncode}: {' | '.join(tail)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise EvalError(f"the server at {url} was not ready after {READY_TIMEOUT_S:.0f} s")


@contextmanager
def serving(model: str, folder: Path, flags: list[str]) -> Iterator[LocalServer]:
    """`myllama serve --model MODEL FLAGS` (no predictors, log in `folder`) until the block ends."""
    port = free_port()
    name = model.partition("=")[0].replace("/", "_")
    command = [
        sys.executable, "-m", "myllama", "serve", "--port", str(port), "--model", model,
        "--no-load-predictors", "--prediction-log", str(folder / f"predictions-{name}.db"), *flags,
    ]  # fmt: skip
    log_path = folder / f"server-{name}.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, process, log_path)
            yield LocalServer(url, process, time.perf_counter() - started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

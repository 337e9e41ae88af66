"""Test helpers: free ports and real `myllama` processes on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Poll `url` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} was up")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def running_process(
    command: list[str],
    health_url: str,
    env: dict[str, str] | None = None,
    log_name: str = "server",
    timeout: float = 120.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` as a real process (log in test-artifacts/logs), wait for health, stop it."""
    log_dir = ROOT / "test-artifacts" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = (log_dir / f"{log_name}-{os.getpid()}-{time.monotonic_ns()}.log").open("wb")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(health_url, process, timeout)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


@contextmanager
def running_myllama(
    args: list[str], health_url: str, env: dict[str, str] | None = None, log_name: str = "server"
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `myllama ARGS` as a real process, wait for health, stop it afterwards."""
    with running_process([sys.executable, "-m", "myllama", *args], health_url, env, log_name) as p:
        yield p

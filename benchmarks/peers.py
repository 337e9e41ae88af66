"""The servers of the serving benchmark (us and three peers on one GGUF), and the machine."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import ROOT, free_port, running_myllama, running_process

log = logging.getLogger("serving_bench")

SYSTEMS = ("myllama", "llama-server", "example-server", "llama-cpp-server")
LABELS = {
    "myllama": "My LLAMA",
    "llama-server": "llama.cpp llama-server",
    "example-server": "llama-cpp-python examples/server/server.py",
    "llama-cpp-server": "python -m llama_cpp.server",
}
CACHE = Path.home() / ".cache" / "myllama" / "llama-server"


def pinned_llama_cpp_python() -> str:
    """The llama-cpp-python version pinned in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"llama-cpp-python==([0-9.]+)"', text)
    if not match:
        raise RuntimeError("llama-cpp-python is not pinned in pyproject.toml")
    return match.group(1)


def llama_server_binary() -> Path:
    """Where `make llama-server` puts llama.cpp's server for the pinned version."""
    return CACHE / pinned_llama_cpp_python() / "llama-server"


def example_server_script() -> Path:
    """llama-cpp-python's batched example server, from the sdist `make llama-server` unpacks."""
    version = pinned_llama_cpp_python()
    return CACHE / "src" / f"llama_cpp_python-{version}" / "examples" / "server" / "server.py"


def missing(system: str) -> str | None:
    """Why `system` cannot run here (None when it can)."""
    if system == "llama-server" and not llama_server_binary().exists():
        return f"not built: run `make llama-server` ({llama_server_binary()} missing)"
    if system == "example-server" and not example_server_script().exists():
        return f"not unpacked: run `make llama-server` ({example_server_script()} missing)"
    return None


@dataclass
class Running:
    """A started server: its base URL, process and the command it was started with."""

    url: str
    process: subprocess.Popen[bytes]
    command: list[str]


@dataclass
class Settings:
    """What every system gets: the GGUF, slots, threads; extra arguments for ours."""

    gguf: Path
    parallel: int
    threads: int
    myllama_args: str = ""


@contextmanager
def _process(command: list[str], ready_path: str, port: int, name: str) -> Iterator[Running]:
    """Start `command`, log to test-artifacts/logs, wait for `ready_path`, stop it afterwards."""
    url = f"http://127.0.0.1:{port}"
    with running_process(command, f"{url}{ready_path}", log_name=f"bench-{name}", timeout=300) as p:
        yield Running(url, p, command)


@contextmanager
def running(system: str, settings: Settings) -> Iterator[Running]:
    """Start one of SYSTEMS on a free port and wait until it answers."""
    port = free_port()
    gguf, slots, threads = str(settings.gguf), settings.parallel, settings.threads
    if system == "myllama":
        args = ["serve", "--port", str(port), "--parallel", str(slots), "--max-queue", "256"]
        args += ["--no-load-predictors", "--n-threads", str(threads)]
        args += shlex.split(settings.myllama_args)
        url = f"http://127.0.0.1:{port}"
        with running_myllama(args, f"{url}/health", log_name="bench-myllama") as process:
            yield Running(url, process, [sys.executable, "-m", "myllama", *args])
    elif system == "llama-server":
        command = [str(llama_server_binary()), "-m", gguf, "-np", str(slots)]
        command += ["-c", str(slots * 2048), "-t", str(threads), "-tb", str(threads)]
        command += ["--jinja", "--host", "127.0.0.1", "--port", str(port)]
        with _process(command, "/health", port, system) as server:
            yield server
    elif system == "example-server":
        config = {
            "server": {"host": "127.0.0.1", "port": port},
            "model": {
                "path": gguf,
                "alias": "bench",
                "n_ctx": slots * 2048,
                "n_seq_max": slots,
                "threads": threads,
                "threads_batch": threads,
            },
        }
        with ExitStack() as stack:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            config_path = Path(folder) / "config.json"
            config_path.write_text(json.dumps(config))
            command = [sys.executable, str(example_server_script()), "-C", str(config_path)]
            yield stack.enter_context(_process(command, "/healthz", port, system))
    elif system == "llama-cpp-server":
        command = [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--port", str(port)]
        command += ["--n_ctx", "2048", "--n_threads", str(threads)]
        command += ["--n_threads_batch", str(threads), "--model_alias", "bench"]
        with _process(command, "/v1/models", port, system) as server:
            yield server
    else:
        raise ValueError(f"unknown system {system!r}; known: {', '.join(SYSTEMS)}")


def machine() -> dict[str, object]:
    """CPU model, cores, load average and date of this machine."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }

"""`myllama up`: the server (a child process) and the UI together; Ctrl-C/SIGTERM stops both."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit

from cli_settings import add_settings_flags, load_settings
from ui.cli import start, wait_until_stopped
from ui.settings import UISettings

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """The UI flags; the server listens where --server-url points (the dispatcher adds the
    server's own flags, which reach `myllama serve` as args.forward_argv)."""
    parser.add_argument("--config", help="YAML config file for the server (as `myllama serve`).")
    add_settings_flags(parser, UISettings)


def server_command(
    settings: UISettings, config: str | None, forwarded: list[str] | None = None
) -> list[str]:
    """`python -m myllama serve` listening on the host and port of the server URL, with the
    server flags given to `up`; a `--tracking-uri` given to `up` is one flag for both."""
    url = urlsplit(settings.server_url)
    command = [sys.executable, "-m", "myllama", "serve"]
    command += ["--host", url.hostname or "127.0.0.1", "--port", str(url.port or 8000)]
    if "tracking_uri" in settings.model_fields_set:  # else the server's config or default holds
        command += ["--tracking-uri", settings.tracking_uri]
    return command + (["--config", config] if config else []) + (forwarded or [])


def stop_server(server: subprocess.Popen[bytes], grace: float = 20.0) -> int:
    """SIGTERM, wait for a graceful exit, SIGKILL after `grace` seconds."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("server did not stop in %.0f s; killing it", grace)
            server.kill()
    return server.wait()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    """Start both, wait for a signal (or the server dying), stop both."""
    settings = load_settings(UISettings, args)
    signal.signal(signal.SIGTERM, _interrupt)  # until the UI is up, SIGTERM still stops the server
    env = dict(os.environ)
    if settings.api_key is not None:
        env["MYLLAMA_API_KEY"] = settings.api_key.get_secret_value()  # not visible in `ps`
    # Its own session: a terminal's Ctrl-C reaches only us, and we stop the server once.
    command = server_command(settings, args.config, getattr(args, "forward_argv", []))
    server = subprocess.Popen(command, env=env, start_new_session=True)
    log.info("server starting (pid %d) at %s", server.pid, settings.server_url)
    try:
        demo = start(settings)
        try:
            signalled = wait_until_stopped(lambda: server.poll() is None)
        finally:
            demo.close()
    finally:
        code = stop_server(server)
    if not signalled:
        log.error("the server exited with status %d; the UI stopped too", code)
        return code or 1
    return 0

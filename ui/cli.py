"""`myllama ui`: flags → UISettings → the Gradio app, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cli_settings import add_settings_flags, load_settings
from ui.auth import is_loopback, login_check
from ui.settings import UISettings

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the UI flags."""
    add_settings_flags(parser, UISettings)


def start(settings: UISettings) -> gr.Blocks:
    """Build the app and serve it in the background."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # The dispatcher set the level from --log-level or the server's MYLLAMA_LOG_LEVEL; the UI's
    # own level comes from the flag or MYLLAMA_UI_LOG_LEVEL.
    logging.getLogger().setLevel(settings.log_level.upper())
    for chatty in ("httpx", "httpx2"):  # one INFO line per request to the server otherwise
        logging.getLogger(chatty).setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    from ui.app import THEME, build_app

    logins = settings.logins()
    if not logins and not is_loopback(settings.host):
        log.warning(
            "the UI listens on %s without a login, and every visitor uses the server's key: "
            "set MYLLAMA_UI_USERS (user:password,...) or --users-file",
            settings.host,
        )
    demo = build_app(settings)
    demo.queue(default_concurrency_limit=None)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        theme=THEME,
        prevent_thread_lock=True,
        quiet=True,
        footer_links=[],
        auth=login_check(logins) if logins else None,
        auth_message="My LLAMA: sign in with the user name and password you were given."
        if logins
        else None,
    )
    log.info(
        "UI on http://%s:%d (server %s; %s)",
        settings.host,
        settings.port,
        settings.server_url,
        f"login for {len(logins)} user(s)" if logins else "no login",
    )
    return demo


def wait_until_stopped(alive: Callable[[], bool] = lambda: True) -> bool:
    """Block until SIGINT/SIGTERM (True) or until `alive()` turns false (False)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop.wait(0.5):
        if not alive():
            return False
    return True


def run(args: argparse.Namespace) -> int:
    """Serve the UI until interrupted."""
    demo = start(load_settings(UISettings, args))
    wait_until_stopped()
    demo.close()
    return 0

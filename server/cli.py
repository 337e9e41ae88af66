"""`myllama serve`: flags → ServerSettings → uvicorn."""

from __future__ import annotations

import argparse

from cli_settings import add_settings_flags, load_settings
from server.settings import ServerSettings


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags."""
    parser.add_argument("--config", help="YAML config file (same keys as the flags).")
    add_settings_flags(parser, ServerSettings)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from server.app import create_app

    settings = load_settings(ServerSettings, args)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    return 0

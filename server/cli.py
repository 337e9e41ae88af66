"""`myllama serve`: flags → ServerSettings → uvicorn."""

from __future__ import annotations

import argparse

from cli_settings import add_settings_flags, load_settings
from server.ray.settings import RaySettings
from server.settings import ServerSettings


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the serve flags."""
    parser.add_argument("--config", help="YAML config file (same keys as the flags).")
    add_settings_flags(parser, ServerSettings)
    add_settings_flags(parser.add_argument_group("Ray Serve (with --ray)"), RaySettings)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from server.app import create_app

    settings = load_settings(ServerSettings, args)
    ray_settings = load_settings(RaySettings, args)
    if ray_settings.ray:
        from server.ray.launch import serve_on_ray  # Ray is imported only when asked for

        return serve_on_ray(settings, ray_settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    return 0

"""UI settings: the UI's own env vars are MYLLAMA_UI_*, apart from the server's; flags win."""

from __future__ import annotations

import argparse

import pytest

from cli_settings import add_settings_flags, load_settings
from ui.settings import UISettings

SERVER_ENV = {"MYLLAMA_HOST": "0.0.0.0", "MYLLAMA_PORT": "8000", "MYLLAMA_LOG_LEVEL": "debug"}


def parse(argv: list[str]) -> argparse.Namespace:
    """The `myllama ui` flags, parsed."""
    parser = argparse.ArgumentParser()
    add_settings_flags(parser, UISettings)
    return parser.parse_args(argv)


def test_server_listening_env_vars_do_not_move_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    """MYLLAMA_HOST/PORT/LOG_LEVEL belong to the server: the UI keeps its own defaults."""
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(UISettings, parse([]))
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 7860, "info")


def test_ui_env_vars_set_the_ui_and_server_env_vars_find_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MYLLAMA_UI_* set where the UI listens; MYLLAMA_SERVER_URL/API_KEY where it connects."""
    for name, value in SERVER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MYLLAMA_UI_HOST", "0.0.0.0")
    monkeypatch.setenv("MYLLAMA_UI_PORT", "7999")
    monkeypatch.setenv("MYLLAMA_UI_LOG_LEVEL", "warning")
    monkeypatch.setenv("MYLLAMA_UI_TIMEOUT", "5")
    monkeypatch.setenv("MYLLAMA_SERVER_URL", "http://server:8000")
    monkeypatch.setenv("MYLLAMA_API_KEY", "sk-env")
    settings = load_settings(UISettings, parse([]))
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 7999, "warning")
    assert settings.timeout == 5.0
    assert settings.server_url == "http://server:8000"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-env"


def test_flags_keep_their_names_and_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """--host/--port/--log-level/--server-url/--api-key beat every env var."""
    monkeypatch.setenv("MYLLAMA_UI_PORT", "7999")
    monkeypatch.setenv("MYLLAMA_SERVER_URL", "http://server:8000")
    monkeypatch.setenv("MYLLAMA_API_KEY", "sk-env")
    argv = ["--host", "0.0.0.0", "--port", "7001", "--log-level", "error"]
    argv += ["--server-url", "http://other:9000", "--api-key", "sk-flag"]
    settings = load_settings(UISettings, parse(argv))
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 7001, "error")
    assert settings.server_url == "http://other:9000"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "sk-flag"

"""UI settings: own MYLLAMA_UI_* env vars apart from the server's; flags win; the logins."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cli_settings import add_settings_flags, load_settings
from ui.auth import is_loopback, login_check
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


def test_logins_come_from_the_env_and_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """MYLLAMA_UI_USERS pairs plus a users file; a password may hold ':' and spaces."""
    users = tmp_path / "users.txt"
    users.write_text("# the team\ncarol:s3cret\n\n  dave:pass word:2  \n")
    monkeypatch.setenv("MYLLAMA_UI_USERS", "alice:wonder land,bob:x:y")
    settings = load_settings(UISettings, parse(["--users-file", str(users)]))
    assert settings.logins() == {
        "alice": "wonder land",
        "bob": "x:y",
        "carol": "s3cret",
        "dave": "pass word:2",
    }
    assert load_settings(UISettings, parse(["--users", "erin:pw"])).logins() == {"erin": "pw"}
    monkeypatch.delenv("MYLLAMA_UI_USERS")
    assert load_settings(UISettings, parse([])).logins() == {}


@pytest.mark.parametrize("users", ["alice", "alice:", ":pw", "alice:pw,,bob"])
def test_a_malformed_login_fails_at_start_up_without_echoing_it(users: str) -> None:
    """'user:password' with both parts, or a ValueError naming the entry (not its text)."""
    settings = UISettings(users=users)
    with pytest.raises(ValueError, match=f"entry {3 if ',,' in users else 1} ") as bad:
        settings.logins()
    assert "alice" not in str(bad.value) and "pw" not in str(bad.value)


def test_login_check_accepts_only_the_right_password() -> None:
    """Known user and right password only; unknown users and near misses refused."""
    check = login_check({"alice": "wonder land", "bob": "x:y"})
    assert check("alice", "wonder land") and check("bob", "x:y")
    assert not check("alice", "wonder land ") and not check("alice", "x:y")
    assert not check("mallory", "wonder land") and not check("", "")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("myhost")


def test_one_store_for_the_ui_and_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """MYLLAMA_TRACKING_URI sets the UI's store; `myllama up` hands the same one to the server."""
    from ui.up import server_command

    monkeypatch.setenv("MYLLAMA_TRACKING_URI", "sqlite:////tmp/shared.db")
    settings = load_settings(UISettings, parse([]))
    assert settings.tracking_uri == "sqlite:////tmp/shared.db"
    flag = load_settings(UISettings, parse(["--tracking-uri", "sqlite:///x.db"]))
    command = server_command(flag, None, ["-np", "2"])
    assert command[command.index("--tracking-uri") + 1] == "sqlite:///x.db"
    assert command[-2:] == ["-np", "2"]
    monkeypatch.delenv("MYLLAMA_TRACKING_URI")
    assert "--tracking-uri" not in server_command(load_settings(UISettings, parse([])), None)

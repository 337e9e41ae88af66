"""compose.yaml: every published port on 127.0.0.1 unless MYLLAMA_BIND opts in; MLflow never."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.helpers import ROOT

_VARIABLE = re.compile(r"\$\{(\w+):-([^}]*)\}")


def published(env: dict[str, str]) -> dict[str, list[str]]:
    """Each service's host addresses, the ${VAR:-default} interpolated as Compose does."""
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    hosts: dict[str, list[str]] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            spec = _VARIABLE.sub(lambda m: env.get(m.group(1)) or m.group(2), port)
            parts = spec.split(":")
            assert len(parts) == 3, f"{name} publishes {port!r} without a host address"
            hosts.setdefault(name, []).append(parts[0])
    return hosts


def test_every_port_is_on_loopback_by_default() -> None:
    """No variable set: server, UI and MLflow are reachable from this machine only."""
    assert published({}) == {
        "server": ["127.0.0.1"],
        "ui": ["127.0.0.1"],
        "mlflow": ["127.0.0.1"],
        "prometheus": ["127.0.0.1"],
        "grafana": ["127.0.0.1"],
    }


def test_bind_opts_the_server_and_ui_in_but_never_mlflow() -> None:
    """MYLLAMA_BIND=0.0.0.0 publishes the server and the UI; MLflow (no auth) stays local."""
    hosts = published({"MYLLAMA_BIND": "0.0.0.0", "MYLLAMA_MLFLOW_PORT": "5001"})
    local = ["127.0.0.1"]
    assert hosts == {
        "server": ["0.0.0.0"],
        "ui": ["0.0.0.0"],
        "mlflow": local,
        "prometheus": local,  # the monitoring profile: no auth on Prometheus, anonymous Grafana
        "grafana": local,
    }


def test_the_ui_gets_its_logins_from_the_shell() -> None:
    """MYLLAMA_UI_USERS is passed through to the UI container (its login page)."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert "MYLLAMA_UI_USERS" in compose["services"]["ui"]["environment"]

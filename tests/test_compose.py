"""compose.yaml: ports on loopback unless MYLLAMA_BIND opts in (not MLflow); MLflow on Postgres."""

from __future__ import annotations

import re
import tomllib
from typing import Any
from urllib.parse import urlsplit

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


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return compose


def _defaults(text: str) -> str:
    """`text` with every ${VAR:-default} replaced by its default (no variable set)."""
    return _VARIABLE.sub(lambda m: m.group(2), text)


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment list as a dict (pass-through names map to '')."""
    pairs = (item.partition("=") for item in service.get("environment", []))
    return {name: value for name, _, value in pairs}


def test_mlflow_keeps_its_store_in_the_postgres_service() -> None:
    """MLflow's backend store is the `postgres` service (psycopg 3), with the user, password and
    database that service creates; artefacts on a volume; it starts once PostgreSQL is healthy."""
    services = _compose()["services"]
    command = services["mlflow"]["command"]
    uri = urlsplit(_defaults(command[command.index("--backend-store-uri") + 1]))
    postgres = _env(services["postgres"])
    assert uri.scheme == "postgresql+psycopg"
    assert (uri.hostname, uri.port) == ("postgres", 5432)
    assert uri.username == postgres["POSTGRES_USER"]
    assert uri.password == _defaults(postgres["POSTGRES_PASSWORD"])
    assert uri.path.lstrip("/") == postgres["POSTGRES_DB"]
    artifacts = _defaults(command[command.index("--artifacts-destination") + 1])
    assert any(artifacts.startswith(v.split(":")[1]) for v in services["mlflow"]["volumes"])
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"] and "ports" not in services["postgres"]
    data = [v for v in services["postgres"]["volumes"] if v.endswith(":/var/lib/postgresql/data")]
    assert data and data[0].split(":")[0] in _compose()["volumes"]


def test_the_image_has_the_postgres_driver() -> None:
    """The image MLflow runs in is built with the `cluster` extra, which carries psycopg."""
    build = _compose()["x-myllama"]["build"]
    extras = _defaults(build["args"]["EXTRAS"]).split(",")
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras) <= set(optional)
    assert any(req.startswith("psycopg") for extra in extras for req in optional[extra])


def test_server_and_eval_record_to_that_mlflow() -> None:
    """The server loads predictors from, and eval logs runs to, the MLflow service."""
    services = _compose()["services"]
    for name in ("server", "eval"):
        assert _env(services[name])["MYLLAMA_TRACKING_URI"] == "http://mlflow:5000", name
    command = services["eval"]["command"]
    assert command[:3] == ["myllama", "eval", "run"]
    assert command[command.index("--server-url") + 1] == "http://server:8000"
    assert services["eval"]["profiles"] == ["eval"]  # only on request, not on `up`


def test_myllama_variables_are_real_settings() -> None:
    """Each MYLLAMA_* variable given to the server or the eval service is one they read."""
    from cli_settings import env_name
    from eval.settings import EvalRunSettings
    from server.settings import ServerSettings

    services = _compose()["services"]
    for name, model in (("server", ServerSettings), ("eval", EvalRunSettings)):
        names = {env_name(model, field) for field in model.model_fields}
        given = {var for var in _env(services[name]) if var.startswith("MYLLAMA_")}
        assert given <= names, (name, given - names)

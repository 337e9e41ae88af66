"""The `myllama` command: a thin dispatcher that imports a room only when its subcommand runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from cli_settings import add_settings_flags, forwarded_argv, load_settings, validation_message

log = logging.getLogger("myllama")
FORWARD_PREFIX = "forward_"


# ---- subcommands -------------------------------------------------------------

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module with `configure(parser)` and `run(args)`, help)
    "serve": ("server.cli", "Run the OpenAI-compatible server."),
    "ui": ("ui.cli", "Run the Gradio UI (a client of the server)."),
    "up": ("ui.up", "Run the server and the UI together."),
    "train": ("models.predictors.cli", "Train the classical predictors and log them to MLflow."),
    "eval": ("eval.cli", "Offline evaluation: latency, output drift, tabular drift."),
    "models": ("models.lifecycle.cli", "The LLM's lifecycle: list, quantize, compare, promote."),
    "mlflow": ("myllama", "Open the MLflow UI on the store the server and eval use."),
}
# Subcommands that start another one as a child process and pass its flags on:
# name: (module, settings class, title of the flag group).
FORWARDS: dict[str, tuple[str, str, str]] = {
    "up": ("server.settings", "ServerSettings", "server flags (passed on to `myllama serve`)"),
}
# Actions of a subcommand that live in another room: `models compare` runs the eval harness,
# so eval provides it (models never imports eval).
NESTED: dict[str, dict[str, tuple[str, str]]] = {
    "models": {"compare": ("eval.compare", "Serve two models, measure speed and output drift.")},
}


# ---- myllama mlflow --------------------------------------------------------------


class MlflowUISettings(BaseSettings):
    """Where `myllama mlflow` finds the store and serves its UI."""

    model_config = SettingsConfigDict(env_prefix="MYLLAMA_MLFLOW_", extra="ignore")

    tracking_uri: str = Field(
        default="sqlite:///mlflow.db",
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow store to open (the server's and eval's default).",
    )
    host: str = Field(default="127.0.0.1", description="Address the MLflow UI listens on.")
    port: int = Field(default=5000, ge=0, le=65535, description="Port of the MLflow UI.")
    workers: int = Field(
        default=1, ge=1, description="Server processes (one is plenty for a local UI)."
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """The `myllama mlflow` flags."""
    add_settings_flags(parser, MlflowUISettings)


def run(args: argparse.Namespace) -> int:
    """`mlflow ui` on the project's store (a tracking server URL is only reported)."""
    settings = load_settings(MlflowUISettings, args)
    uri = settings.tracking_uri
    if urlsplit(uri).scheme in ("http", "https"):
        log.info("the store is an MLflow server: open %s", uri)
        return 0
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", settings.host, "--port", str(settings.port)]
    command += ["--workers", str(settings.workers)]
    log.info("MLflow UI on http://%s:%d for %s", settings.host, settings.port, uri)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    os.execve(sys.executable, command, env)  # mlflow takes this process over (and its signals)


# ---- the parser ---------------------------------------------------------------------


def version_text() -> str:
    """myllama's version, with llama-cpp-python's and Python's."""
    parts = [f"myllama {version('myllama')}"]
    try:
        parts.append(f"llama-cpp-python {version('llama-cpp-python')}")
    except PackageNotFoundError:
        parts.append("llama-cpp-python not installed")
    return f"{parts[0]} ({parts[1]}, Python {sys.version.split()[0]})"


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print `PROG: error: MESSAGE (see PROG --help)` and exit with 2."""
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported."""
    parser = OneLineErrorParser(prog="myllama", description=__doc__)
    parser.add_argument("-V", "--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = sys.modules[__name__] if module_name == "myllama" else None
            module = module or importlib.import_module(module_name)
            actions = module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
            if name in FORWARDS:
                forward_module, class_name, title = FORWARDS[name]
                model = getattr(importlib.import_module(forward_module), class_name)
                add_settings_flags(sub_parser.add_argument_group(title), model, FORWARD_PREFIX)
                sub_parser.set_defaults(_forward=model)
            for action, (action_module, action_help) in NESTED.get(name, {}).items():
                action_parser = actions.add_parser(action, help=action_help)
                if action in argv:
                    nested = importlib.import_module(action_module)
                    nested.configure(action_parser)
                    action_parser.set_defaults(_run=nested.run)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; flags for a child command collected in `forward_argv`."""
    args = build_parser(argv).parse_args(argv)
    forward = getattr(args, "_forward", None)
    if forward is not None:
        args.forward_argv = forwarded_argv(args, forward, FORWARD_PREFIX)
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `myllama` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    level = getattr(args, "log_level", None) or os.environ.get("MYLLAMA_LOG_LEVEL", "info")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = args._run(args)
    except ValidationError as exc:  # field and reason only: the values may hold keys
        log.error("%s", validation_message(exc))
        return 2
    except (OSError, ValueError, yaml.YAMLError) as exc:  # bad paths or config: no traceback
        log.error("%s", " ".join(str(exc).split()))
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

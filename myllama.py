"""The `myllama` command: a thin dispatcher that imports a room only when its subcommand runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)

log = logging.getLogger("myllama")


# ---- settings ↔ flags --------------------------------------------------------


def _scalar_type(annotation: Any) -> Any:
    """The Python type argparse should convert a flag value to."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not None and args:
        return _scalar_type(args[0])
    if annotation in (int, float, Path):
        return annotation
    return str


def add_settings_flags(parser: argparse.ArgumentParser, model: type[BaseModel]) -> None:
    """One --flag per settings field, help text from the field's description."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        flag = "--" + name.replace("_", "-")
        args = get_args(annotation)
        inner = [a for a in args if a is not type(None)]
        if annotation is bool:
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=field.description,
            )
        elif get_origin(annotation) is list:
            if inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
                continue  # structured lists come from the config file only
            parser.add_argument(
                flag,
                dest=name,
                action="append",
                default=None,
                type=_scalar_type(annotation),
                help=field.description,
            )
        else:
            metavar = "KEY" if SecretStr in inner or annotation is SecretStr else None
            parser.add_argument(
                flag,
                dest=name,
                default=None,
                type=_scalar_type(annotation),
                metavar=metavar,
                help=field.description,
            )


def load_settings(model: type[S], args: argparse.Namespace) -> S:
    """Settings from flags over MYLLAMA_* env vars over the YAML config file over defaults."""
    flags = {k: v for k, v in vars(args).items() if k in model.model_fields and v is not None}
    config_file = getattr(args, "config", None)
    if config_file is None:
        return model(**flags)
    if not Path(config_file).is_file():
        raise SystemExit(f"myllama: config file not found: {config_file}")
    with_yaml = type(
        model.__name__,
        (model,),
        {"model_config": SettingsConfigDict(**{**model.model_config, "yaml_file": config_file})},
    )
    from pydantic_settings import PydanticBaseSettingsSource, YamlConfigSettingsSource

    def sources(
        cls: type[BaseSettings],
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls)

    with_yaml.settings_customise_sources = classmethod(sources)  # type: ignore[attr-defined]
    return with_yaml(**flags)


# ---- subcommands -------------------------------------------------------------

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module with `configure(parser)` and `run(args)`, help)
    "serve": ("server.cli", "Run the OpenAI-compatible server."),
    "ui": ("ui.cli", "Run the Gradio UI (a client of the server)."),
    "up": ("ui.up", "Run the server and the UI together."),
    "train": ("models.predictors.cli", "Train the classical predictors and log them to MLflow."),
    "eval": ("eval.cli", "Offline evaluation: latency, output drift, tabular drift."),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="myllama", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `myllama` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    level = getattr(args, "log_level", None) or os.environ.get("MYLLAMA_LOG_LEVEL", "info")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = args._run(args)
    except (FileNotFoundError, ValueError) as exc:  # bad paths, settings or config: no traceback
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

"""Settings ↔ command-line flags: one --flag per pydantic-settings field, for every room."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

S = TypeVar("S", bound=BaseSettings)


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

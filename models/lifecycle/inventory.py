"""Every model the server could serve (catalog entries, registry versions); finding one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.catalog import DEFAULT_MODEL, DEFAULT_MODEL_ID, ModelSpec
from models.lifecycle.gguf_facts import read_facts
from models.lifecycle.registry import Registry, RegistryError, Variant, is_registry_uri
from models.predictors.tracking import store_exists

CATALOG = [DEFAULT_MODEL]
_QUANT_SUFFIX = re.compile(r"[._-](i?q\d[\w]*|f16|bf16|f32)$", re.IGNORECASE)


@dataclass(frozen=True)
class Located:
    """A model found by id, URI or path: its file, family and (if registered) its version."""

    path: Path
    family: str
    model_id: str
    variant: Variant | None = None


def family_of(path: Path) -> str:
    """A family name from a GGUF file name: the stem without its quantisation suffix."""
    return _QUANT_SUFFIX.sub("", path.stem).lower()


def open_registry(tracking_uri: str, create: bool = False) -> Registry | None:
    """The registry, or None when a local store was never created (and `create` is false)."""
    if not create and not store_exists(tracking_uri):
        return None
    return Registry(tracking_uri)


def _catalog_spec(ref: str) -> ModelSpec | None:
    return next((s for s in CATALOG if ref in (s.id, *s.aliases)), None)


def locate(ref: str, registry: Registry | None) -> Located:
    """A catalog id, a registered model id, a models:/ URI or a GGUF path."""
    if is_registry_uri(ref):
        if registry is None:
            raise RegistryError(f"{ref}: there is no model registry yet (nothing registered)")
        variant = registry.get(ref)
        return Located(registry.local_path(variant), variant.family, variant.model_id, variant)
    spec = _catalog_spec(ref)
    if spec is not None:
        return Located(spec.gguf_path(), spec.id, spec.id)
    if registry is not None and (found := registry.find(ref)) is not None:
        return Located(registry.local_path(found), found.family, found.model_id, found)
    path = Path(ref).expanduser()
    if path.is_file():
        return Located(path, family_of(path), path.stem.lower())
    known = ", ".join(s.id for s in CATALOG)
    raise FileNotFoundError(
        f"no model {ref!r}: not a catalog id ({known}), a registered id, a models:/ URI or a file"
    )


def _catalog_row(spec: ModelSpec) -> dict[str, Any]:
    facts = read_facts(spec.gguf_path())
    return {
        "id": spec.id,
        "aliases": list(spec.aliases),
        "source": "catalog",
        "file": facts.path,
        "file_size": facts.file_size,
        "quantization": facts.quantization,
        "sha256": facts.sha256,
        "n_params": facts.n_params,
        "n_ctx_train": facts.n_ctx_train,
        "default": spec.id == DEFAULT_MODEL_ID,
        "champion": False,
    }


def list_models(tracking_uri: str) -> list[dict[str, Any]]:
    """Catalog entries first, then every registered GGUF version."""
    rows = [_catalog_row(spec) for spec in CATALOG]
    registry = open_registry(tracking_uri)
    if registry is not None:
        rows += [{**v.card(), "default": False} for v in registry.variants()]
    return rows


def show(ref: str, tracking_uri: str) -> dict[str, Any]:
    """One model's row, with the facts read from its GGUF header."""
    registry = open_registry(tracking_uri)
    found = locate(ref, registry)
    facts = read_facts(found.path).as_dict()
    if found.variant is not None:
        return {**found.variant.card(), **facts, "file": facts["path"]}
    spec = _catalog_spec(ref)
    row = _catalog_row(spec) if spec is not None else {"id": found.model_id, "source": "file"}
    return {**row, **facts, "file": facts["path"], "family": found.family}

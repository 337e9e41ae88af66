"""GGUF variants in the MLflow registry: one registered model per family, a version per file."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from models.lifecycle.gguf_facts import GgufFacts
from models.predictors.tracking import DEFAULT_TRACKING_URI, offline

log = logging.getLogger(__name__)

EXPERIMENT = "myllama-models"
KIND_TAG = "myllama.kind"
GGUF_KIND = "gguf"
CHAMPION = "champion"
ARTIFACT_DIR = "gguf"
CACHE_DIR = Path("~/.cache/myllama/gguf")
# version tags
T_MODEL_ID, T_QUANT, T_SHA, T_PARENT = "model_id", "quantization", "sha256", "parent_sha256"
T_SIZE, T_LLAMA, T_FILE = "file_size", "llama_cpp_version", "file_name"
T_PARAMS, T_CTX, T_ARCH = "n_params", "n_ctx_train", "architecture"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class RegistryError(ValueError):
    """A registry request that cannot be met (unknown model, version or alias)."""


def tracking_uri_from_env() -> str:
    """The store `myllama serve` resolves models:/ URIs in: MYLLAMA_TRACKING_URI or the default."""
    return os.environ.get("MYLLAMA_TRACKING_URI") or DEFAULT_TRACKING_URI


def is_registry_uri(text: str) -> bool:
    """Whether `text` is a models:/ URI."""
    return text.startswith("models:/")


@dataclass(frozen=True)
class Variant:
    """One registered GGUF: its registry coordinates and the facts kept in its tags."""

    family: str
    version: int
    model_id: str
    tags: dict[str, str]
    aliases: list[str] = field(default_factory=list)
    run_id: str | None = None
    source: str = ""

    @property
    def uri(self) -> str:
        """models:/FAMILY/VERSION."""
        return f"models:/{self.family}/{self.version}"

    @property
    def sha256(self) -> str:
        """The GGUF's SHA-256."""
        return self.tags.get(T_SHA, "")

    def card(self) -> dict[str, Any]:
        """The listing row of this version."""
        tags = self.tags
        return {
            "id": self.model_id,
            "aliases": [self.uri, *(f"models:/{self.family}@{a}" for a in self.aliases)],
            "source": "registry",
            "family": self.family,
            "version": self.version,
            "file": tags.get(T_FILE),
            "file_size": int(tags.get(T_SIZE, 0)),
            "quantization": tags.get(T_QUANT),
            "sha256": self.sha256,
            "parent_sha256": tags.get(T_PARENT) or None,
            "n_params": int(tags[T_PARAMS]) if tags.get(T_PARAMS) else None,
            "n_ctx_train": int(tags[T_CTX]) if tags.get(T_CTX) else None,
            "llama_cpp_version": tags.get(T_LLAMA),
            "champion": CHAMPION in self.aliases,
            "run_id": self.run_id,
        }


def _local_folder(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def _artifact_root(tracking_uri: str) -> str | None:
    """Artefacts of a SQLite store live beside its file (./mlruns for the default store)."""
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlruns")
    return None


class Registry:
    """The MLflow model registry seen as GGUF families and variants."""

    def __init__(self, tracking_uri: str) -> None:
        offline()
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The experiment called `name`, created (artefacts beside a SQLite store) if missing."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        root = _artifact_root(self.tracking_uri)
        location = None
        if root is not None:
            location = Path(root, name).as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    # ---- reading ------------------------------------------------------------

    def families(self) -> list[str]:
        """Names of the registered models that hold GGUFs."""
        return sorted(
            m.name
            for m in self.client.search_registered_models(max_results=1000)
            if m.tags.get(KIND_TAG) == GGUF_KIND
        )

    def _variant(self, mv: Any, aliases: dict[str, list[str]]) -> Variant:
        tags = dict(mv.tags)
        return Variant(
            family=mv.name,
            version=int(mv.version),
            model_id=tags.get(T_MODEL_ID, f"{mv.name}-v{mv.version}"),
            tags=tags,
            aliases=aliases.get(str(mv.version), []),
            run_id=mv.run_id,
            source=mv.source,
        )

    def _aliases(self, family: str) -> dict[str, list[str]]:
        by_version: dict[str, list[str]] = {}
        for alias, version in self.client.get_registered_model(family).aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def variants(self, family: str | None = None) -> list[Variant]:
        """Every registered GGUF version (of one family, or of all), oldest first."""
        out: list[Variant] = []
        for name in [family] if family else self.families():
            aliases = self._aliases(name)
            found = self.client.search_model_versions(f"name='{name}'", max_results=10000)
            out.extend(self._variant(mv, aliases) for mv in found)
        return sorted(out, key=lambda v: (v.family, v.version))

    def get(self, uri: str) -> Variant:
        """The version a models:/NAME/VERSION or models:/NAME@ALIAS URI names."""
        from mlflow.exceptions import MlflowException

        match = _URI.match(uri)
        if match is None:
            raise RegistryError(
                f"not a model URI: {uri!r} (use models:/NAME@ALIAS or models:/NAME/VERSION)"
            )
        name = match["name"]
        try:
            if match["alias"]:
                mv = self.client.get_model_version_by_alias(name, match["alias"])
            else:
                mv = self.client.get_model_version(name, match["version"])
            return self._variant(mv, self._aliases(name))
        except MlflowException as exc:
            raise RegistryError(f"{uri} is not in the registry at {self.tracking_uri}") from exc

    def find(self, ref: str) -> Variant | None:
        """A version by URI, model id or SHA-256 (the latest when several match)."""
        if is_registry_uri(ref):
            return self.get(ref)
        matches = [v for v in self.variants() if ref in (v.model_id, v.sha256)]
        return matches[-1] if matches else None

    def alias_holder(self, family: str, alias: str) -> Variant | None:
        """The version holding `alias`, if any."""
        try:
            return self.get(f"models:/{family}@{alias}")
        except RegistryError:
            return None

    def local_path(self, variant: Variant) -> Path:
        """The variant's GGUF on this machine (downloaded once into a cache for remote stores)."""
        import mlflow.artifacts

        file_name = variant.tags.get(T_FILE, "")
        folder = _local_folder(variant.source)
        if folder is not None and (folder / file_name).is_file():
            return folder / file_name
        cache = CACHE_DIR.expanduser() / variant.sha256
        cached = cache / file_name
        if not cached.is_file():
            log.info("downloading %s into %s", variant.uri, cache)
            cache.mkdir(parents=True, exist_ok=True)
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{variant.source.rstrip('/')}/{file_name}",
                dst_path=str(cache),
                tracking_uri=self.tracking_uri,
            )
        return cached

    # ---- writing ------------------------------------------------------------

    def _ensure_family(self, family: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(family)
        except MlflowException:
            self.client.create_registered_model(
                family,
                tags={KIND_TAG: GGUF_KIND},
                description=f"GGUF variants of {family} (one version per quantisation)",
            )
            return
        if model.tags.get(KIND_TAG) != GGUF_KIND:
            raise RegistryError(f"registered model {family!r} exists and does not hold GGUFs")

    def register(
        self,
        facts: GgufFacts,
        family: str,
        model_id: str,
        parent_sha256: str | None,
        run_tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Variant:
        """Log the GGUF in a run and make it a new version of `family` (champion if first)."""
        import llama_cpp

        self._ensure_family(family)
        path = Path(facts.path)
        run = self.client.create_run(
            self.experiment_id(EXPERIMENT),
            run_name=f"register-{model_id}",
            tags={KIND_TAG: "gguf-register", "family": family, **(run_tags or {})},
        )
        run_id = run.info.run_id
        try:
            for key, value in facts.as_dict().items():
                self.client.log_param(run_id, key, value)
            for key, number in (metrics or {}).items():
                self.client.log_metric(run_id, key, number)
            self.client.log_artifact(run_id, str(path), ARTIFACT_DIR)
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id)
        tags = {
            T_MODEL_ID: model_id,
            T_QUANT: facts.quantization,
            T_SHA: facts.sha256,
            T_PARENT: parent_sha256 or "",
            T_SIZE: str(facts.file_size),
            T_LLAMA: f"llama-cpp-python {llama_cpp.__version__}",
            T_FILE: path.name,
            T_PARAMS: str(facts.n_params),
            T_CTX: str(facts.n_ctx_train or ""),
            T_ARCH: facts.architecture or "",
        }
        mv = self.client.create_model_version(
            family,
            source=f"{run.info.artifact_uri}/{ARTIFACT_DIR}",
            run_id=run_id,
            tags=tags,
            description=f"{model_id}: {facts.quantization} GGUF",
        )
        if self.alias_holder(family, CHAMPION) is None:
            self.client.set_registered_model_alias(family, CHAMPION, mv.version)
        log.info("registered %s as models:/%s/%s", model_id, family, mv.version)
        return self.get(f"models:/{family}/{mv.version}")

    def set_alias(self, variant: Variant, alias: str, tags: dict[str, str]) -> Variant:
        """Move `alias` to `variant` and tag the version with how it got there."""
        for key, value in tags.items():
            self.client.set_model_version_tag(variant.family, str(variant.version), key, value)
        self.client.set_registered_model_alias(variant.family, alias, str(variant.version))
        return self.get(variant.uri)

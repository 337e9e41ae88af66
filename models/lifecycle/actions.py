"""`myllama models quantize | promote`: the registry-changing steps of the lifecycle."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.engine.quantize import Progress, check_gguf, ftype_name, quantize
from models.lifecycle.gguf_facts import read_facts
from models.lifecycle.inventory import locate, open_registry
from models.lifecycle.registry import CHAMPION, Registry, RegistryError, Variant

log = logging.getLogger(__name__)

# What `myllama models compare` records, so that promote can find it (eval writes, models reads).
COMPARE_EXPERIMENT = "myllama-compare"
COMPARE_KIND = "llm-compare"
A_SHA, B_SHA, VERDICT = "a_sha256", "b_sha256", "drift.verdict"
DEFAULT_MODELS_DIR = Path("artifacts/models")


class PromoteRefused(ValueError):
    """The latest compare against the alias holder flagged drift (use --force)."""


def _ensure_registered(registry: Registry, path: Path, family: str, model_id: str) -> Variant:
    """The registry version of this file in `family`, registering it (as a root) if new."""
    facts = read_facts(path)
    existing = registry.variants(family) if family in registry.families() else []
    same = [v for v in existing if v.sha256 == facts.sha256]
    if same:
        return same[-1]
    return registry.register(facts, family, model_id, parent_sha256=None)


def quantize_variant(
    src: str,
    ftype: str,
    tracking_uri: str,
    model_id: str | None = None,
    output: Path | None = None,
    overwrite: bool = False,
    threads: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Quantise SRC to a new GGUF and register it (and its parent) as versions of its family."""
    ftype = ftype_name(ftype)
    if Path(src).is_file():
        check_gguf(Path(src))  # before MLflow is even imported
    registry = open_registry(tracking_uri, create=True)
    assert registry is not None
    found = locate(src, registry)
    new_id = model_id or f"{found.family}-{ftype.lower()}"
    target = output or DEFAULT_MODELS_DIR / f"{new_id}.gguf"
    taken = registry.find(new_id)
    if taken is not None and not overwrite:
        raise RegistryError(f"model id {new_id!r} is {taken.uri} already (use --id or --overwrite)")
    started = time.perf_counter()
    quantize(found.path, target, ftype, overwrite=overwrite, threads=threads, progress=progress)
    seconds = time.perf_counter() - started
    parent = found.variant or _ensure_registered(registry, found.path, found.family, found.model_id)
    facts = read_facts(target)
    variant = registry.register(
        facts,
        parent.family,
        new_id,
        parent_sha256=parent.sha256,
        run_tags={"parent_uri": parent.uri, "quantization": ftype},
        metrics={"quantize_seconds": seconds},
    )
    return {
        "id": variant.model_id,
        "uri": variant.uri,
        "file": str(target),
        "quantization": facts.quantization,
        "file_size": facts.file_size,
        "sha256": facts.sha256,
        "parent": parent.uri,
        "parent_sha256": parent.sha256,
        "quantize_seconds": round(seconds, 2),
        "champion": variant.card()["champion"],
    }


def _latest_compare(registry: Registry, sha_a: str, sha_b: str) -> Any | None:
    """The latest finished compare run between two files (either way round)."""
    experiment = registry.client.get_experiment_by_name(COMPARE_EXPERIMENT)
    if experiment is None:
        return None
    runs: list[Any] = []
    for first, second in ((sha_a, sha_b), (sha_b, sha_a)):
        runs += registry.client.search_runs(
            [experiment.experiment_id],
            filter_string=(
                f"tags.`myllama.kind` = '{COMPARE_KIND}' AND tags.{A_SHA} = '{first}' "
                f"AND tags.{B_SHA} = '{second}' AND attributes.status = 'FINISHED'"
            ),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    return max(runs, key=lambda r: r.info.start_time, default=None)


def promote(
    ref: str, tracking_uri: str, alias: str = CHAMPION, force: bool = False
) -> dict[str, Any]:
    """Move `alias` to the version `ref` names, unless its latest compare flagged drift."""
    registry = open_registry(tracking_uri)
    if registry is None:
        raise RegistryError(f"no model registry at {tracking_uri}; run `myllama models quantize`")
    target = registry.find(ref)
    if target is None:
        raise RegistryError(f"{ref!r} is not a registered model (see `myllama models list`)")
    holder = registry.alias_holder(target.family, alias)
    result: dict[str, Any] = {
        "id": target.model_id,
        "uri": target.uri,
        "alias": alias,
        "previous": holder.uri if holder else None,
        "compare_run_id": None,
        "verdict": None,
        "forced": False,
    }
    if holder is not None and holder.version == target.version:
        return result | {"promoted": False, "reason": f"{target.uri} already holds @{alias}"}
    tags = {f"promoted.{alias}.at": datetime.now(UTC).isoformat(timespec="seconds")}
    if holder is not None:
        run = _latest_compare(registry, holder.sha256, target.sha256)
        verdict = run.data.tags.get(VERDICT) if run is not None else None
        result |= {"compare_run_id": run.info.run_id if run else None, "verdict": verdict}
        if run is None:
            log.warning("no compare between %s and %s on record", holder.uri, target.uri)
        elif verdict == "drift" and not force:
            raise PromoteRefused(
                f"refusing to promote {target.uri}: compare run {run.info.run_id} flagged "
                f"output drift against {holder.uri} (@{alias}); pass --force to promote anyway"
            )
        if run is not None:
            tags[f"promoted.{alias}.compare_run_id"] = run.info.run_id
            tags[f"promoted.{alias}.verdict"] = str(verdict)
        tags[f"promoted.{alias}.previous"] = holder.uri
    if force:
        tags[f"promoted.{alias}.forced"] = "true"
        result["forced"] = True
    registry.set_alias(target, alias, tags)
    return result | {"promoted": True, "reason": f"@{alias} now points at {target.uri}"}

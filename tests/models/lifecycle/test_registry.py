"""`models list | show | promote` and `serve --model models:/…`: the registry seen by the server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import mlflow
from mlflow.tracking import MlflowClient

from models.catalog import DEFAULT_MODEL
from models.lifecycle.actions import COMPARE_EXPERIMENT, COMPARE_KIND, promote
from models.lifecycle.gguf_facts import sha256
from models.lifecycle.registry import Registry
from tests.helpers import free_port, running_myllama
from tests.models.lifecycle.conftest import FAMILY, Done, Store

CHAMPION_URI = f"models:/{FAMILY}@champion"


def test_list_shows_catalog_and_registry(store: Store, variants: dict[str, Any]) -> None:
    """--json lists the catalog default and every registered version with its facts."""
    rows = store.models("list", "--json").json["models"]
    catalog = [r for r in rows if r["source"] == "catalog"]
    assert [(r["id"], r["default"], r["quantization"]) for r in catalog] == [(FAMILY, True, "Q4_1")]
    by_uri = {r["aliases"][0]: r for r in rows if r["source"] == "registry"}
    for ftype, result in variants.items():
        row = by_uri[result["uri"]]
        assert (row["id"], row["quantization"]) == (result["id"], ftype)
        assert (row["sha256"], row["file_size"]) == (result["sha256"], result["file_size"])
        assert row["n_params"] > 100_000_000 and row["n_ctx_train"] == 8192
    champions = [r["sha256"] for r in rows if r["champion"]]
    assert champions == [Registry(store.uri).get(CHAMPION_URI).sha256]
    table = store.models("list")
    assert table.code == 0 and variants["Q8_0"]["id"] in table.out and "champion" in table.out


def test_show_reads_the_file(store: Store, variants: dict[str, Any]) -> None:
    """show by id and by URI: the facts of the GGUF header and its registry version."""
    by_id = store.models("show", variants["Q8_0"]["id"]).json
    by_uri = store.models("show", variants["Q8_0"]["uri"]).json
    assert by_id["sha256"] == by_uri["sha256"] == variants["Q8_0"]["sha256"]
    assert by_id["quantization"] == "Q8_0" and by_id["n_ctx_train"] == 8192
    missing = store.models("show", "no-such-model")
    assert missing.code == 2 and "no model 'no-such-model'" in missing.err
    assert "Traceback" not in missing.err


@contextmanager
def _serving(store: Store, model: str) -> Iterator[dict[str, Any]]:
    """`myllama serve --model MODEL` on the store; yields the first /v1/models card."""
    port = free_port()
    log = str(store.folder / "predictions.db")
    args = ["serve", "--port", str(port), "--model", model, "--no-load-predictors",
            "--prediction-log", log, "--parallel", "1"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = {"MYLLAMA_TRACKING_URI": store.uri}
    with running_myllama(args, f"{url}/health", env=env, log_name="serve-registry"):
        yield httpx.get(f"{url}/v1/models").json()["data"][0]


def test_promote_then_restarted_server_serves_new_champion(
    store: Store, variants: dict[str, Any], comparison: Done
) -> None:
    """serve models:/NAME@champion; promote Q8_0 (refused on drift unless --force); restart."""
    with _serving(store, CHAMPION_URI) as card:
        assert card["meta"]["file_sha256"] == sha256(DEFAULT_MODEL.gguf_path())
    verdict = comparison.json["drift"]["verdict"]
    target = variants["Q8_0"]["id"]
    done = store.models("promote", target)
    if verdict == "drift":
        assert done.code == 2 and "flagged output drift" in done.err, done.err[-2000:]
        assert comparison.json["run_id"] in done.err
        done = store.models("promote", target, "--force")
    assert done.code == 0, done.err[-2000:]
    result = done.json
    assert result["promoted"] and result["compare_run_id"] == comparison.json["run_id"]
    assert result["forced"] == (verdict == "drift")
    tags = MlflowClient(registry_uri=store.uri).get_model_version_by_alias(FAMILY, "champion").tags
    assert tags["sha256"] == variants["Q8_0"]["sha256"]
    assert tags["promoted.champion.compare_run_id"] == comparison.json["run_id"]
    assert tags.get("promoted.champion.forced") == ("true" if verdict == "drift" else None)
    with _serving(store, CHAMPION_URI) as card:
        assert card["meta"]["file_sha256"] == variants["Q8_0"]["sha256"]
        assert card["id"] == target and card["meta"]["aliases"] == [FAMILY]
    with _serving(store, f"v1={variants['Q4_0']['uri']}") as card:
        assert (card["id"], card["meta"]["file_sha256"]) == ("v1", variants["Q4_0"]["sha256"])


def test_promote_refuses_after_a_drift_verdict(store: Store, variants: dict[str, Any]) -> None:
    """A recorded compare that flagged drift against the alias holder blocks; --force is tagged."""
    registry = Registry(store.uri)
    first = promote(variants["Q4_0"]["uri"], store.uri, alias="staging")
    assert first["promoted"] and first["previous"] is None
    mlflow.set_tracking_uri(store.uri)
    tags = {"myllama.kind": COMPARE_KIND, "a_sha256": variants["Q4_0"]["sha256"],
            "b_sha256": variants["Q8_0"]["sha256"], "drift.verdict": "drift"}  # fmt: skip
    experiment = registry.experiment_id(COMPARE_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name="recorded", tags=tags) as run:
        pass  # what `models compare` records, written by hand: this test is about the rule
    refused = store.models("promote", variants["Q8_0"]["uri"], "--alias", "staging")
    assert refused.code == 2 and run.info.run_id in refused.err
    assert registry.get(f"models:/{FAMILY}@staging").sha256 == variants["Q4_0"]["sha256"]
    forced = promote(variants["Q8_0"]["uri"], store.uri, alias="staging", force=True)
    assert forced["forced"] and forced["verdict"] == "drift"
    moved = registry.get(f"models:/{FAMILY}@staging")
    assert moved.sha256 == variants["Q8_0"]["sha256"]
    assert moved.tags["promoted.staging.forced"] == "true"
    assert moved.tags["promoted.staging.compare_run_id"] == run.info.run_id


def test_serve_unknown_registry_uri_is_one_line(store: Store) -> None:
    """A models:/ URI the registry does not hold stops `serve` with one clear line."""
    done = subprocess.run(
        [sys.executable, "-m", "myllama", "serve", "--model", f"models:/{FAMILY}@nope"],
        env=store.env(), capture_output=True, text=True, timeout=120, cwd=store.folder,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"models:/{FAMILY}@nope is not in the registry" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_without_registry_uri_never_imports_mlflow(tmp_path: Path) -> None:
    """Building the catalog of `serve --model ID=PATH` leaves MLflow and gguf unimported."""
    code = (
        "import sys, myllama\n"
        "myllama.build_parser(['serve'])\n"
        "from models.catalog import build_catalog\n"
        f"build_catalog([], ['smollm2-135m-instruct', 'mine={tmp_path}/x.gguf'])\n"
        "print(sorted(m for m in ('mlflow', 'gguf') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""`myllama models quantize`: real quantisations registered in MLflow, and the refused cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from models.catalog import DEFAULT_MODEL
from models.lifecycle.gguf_facts import read_facts
from tests.models.lifecycle.conftest import FAMILY, Store


def test_variants_are_real_ggufs_of_the_asked_type(variants: dict[str, dict[str, Any]]) -> None:
    """Each output is a GGUF of the asked type, same parameters, with the shipped file as parent."""
    base = read_facts(DEFAULT_MODEL.gguf_path())
    for ftype, result in variants.items():
        facts = read_facts(Path(result["file"]))
        assert facts.quantization == result["quantization"] == ftype
        assert facts.sha256 == result["sha256"] != base.sha256
        assert facts.n_params == base.n_params
        assert result["parent_sha256"] == base.sha256
        assert result["id"] == f"{FAMILY}-{ftype.lower()}"
    assert variants["Q8_0"]["file_size"] > base.file_size > variants["Q4_0"]["file_size"]


def test_versions_carry_the_lifecycle_tags(store: Store, variants: dict[str, Any]) -> None:
    """One registered model for the family: the shipped file (champion) and both variants."""
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    versions = {v.tags["quantization"]: v for v in client.search_model_versions(f"name='{FAMILY}'")}
    assert set(versions) == {"Q4_1", "Q4_0", "Q8_0"}
    base = versions["Q4_1"]
    assert base.tags["parent_sha256"] == ""
    assert client.get_model_version_by_alias(FAMILY, "champion").version == base.version
    for ftype in ("Q4_0", "Q8_0"):
        tags = versions[ftype].tags
        assert tags["sha256"] == variants[ftype]["sha256"]
        assert tags["parent_sha256"] == base.tags["sha256"]
        assert int(tags["file_size"]) == variants[ftype]["file_size"]
        assert tags["llama_cpp_version"].startswith("llama-cpp-python ")
        assert f"models:/{FAMILY}/{versions[ftype].version}" == variants[ftype]["uri"]
        artefacts = client.list_artifacts(versions[ftype].run_id, "gguf")
        assert [a.path for a in artefacts] == [f"gguf/{ftype.lower()}.gguf"]


def test_progress_bar_and_no_llama_cpp_lines_on_stdout(store: Store, variants: Any) -> None:
    """The progress bar counts every tensor on stderr; stdout is only the JSON line."""
    target = store.folder / "gguf" / "q5_k_m.gguf"
    done = store.models(
        "quantize", variants["Q4_0"]["uri"], "--type", "q5_k_m", "--output", str(target)
    )
    assert done.code == 0, done.err[-2000:]
    assert len(done.out.strip().splitlines()) == 1
    assert "272/272" in done.err  # the default model has 272 tensors
    result = done.json
    assert result["quantization"] == "Q5_K_M"
    assert result["parent_sha256"] == variants["Q4_0"]["sha256"]  # a registered parent is kept


def _refused(done: Any, words: str) -> None:
    assert done.code == 2, done.err[-2000:]
    lines = done.err.strip().splitlines()
    assert lines[-1].startswith("myllama models: ") and words in lines[-1]
    assert "Traceback" not in done.err


def test_unknown_type_is_refused(store: Store) -> None:
    """A type llama.cpp has no quantisation for: one line naming the valid ones."""
    done = store.models("quantize", FAMILY, "--type", "Q9_9", "--output", str(store.folder / "x"))
    _refused(done, "unknown quantisation type 'Q9_9'")
    assert "Q4_K_M" in done.err


def test_source_that_is_not_a_gguf_is_refused(store: Store, tmp_path: Path) -> None:
    """A text file is not quantised."""
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    done = store.models("quantize", str(text), "--type", "Q4_0", "--output", str(tmp_path / "o"))
    _refused(done, "is not a GGUF file")


def test_broken_gguf_leaves_no_file(store: Store, tmp_path: Path) -> None:
    """A truncated GGUF fails inside llama.cpp: clear error, no target, no temp file left."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(DEFAULT_MODEL.gguf_path().read_bytes()[:1_000_000])
    out = tmp_path / "out"
    done = store.models("quantize", str(broken), "--type", "Q4_0", "--output", str(out / "b.gguf"))
    _refused(done, "llama.cpp could not quantise")
    assert list(out.iterdir()) == []


def test_existing_target_needs_overwrite(store: Store, variants: dict[str, Any]) -> None:
    """The same output again is refused; --overwrite replaces it and registers a new version."""
    target = variants["Q4_0"]["file"]
    done = store.models("quantize", FAMILY, "--type", "Q4_0", "--id", "again", "--output", target)
    _refused(done, "already exists (pass --overwrite")
    done = store.models(
        "quantize", FAMILY, "--type", "Q4_0", "--output", str(store.folder / "o.gguf")
    )
    _refused(done, f"model id '{FAMILY}-q4_0' is models:/{FAMILY}/")
    done = store.models("quantize", FAMILY, "--type", "Q4_0", "--output", target, "--overwrite")
    assert done.code == 0, done.err[-2000:]
    assert done.json["sha256"] == variants["Q4_0"]["sha256"]  # llama.cpp is deterministic
    assert done.json["uri"] != variants["Q4_0"]["uri"]

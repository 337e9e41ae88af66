"""`myllama models compare`: two real servers, the eval harness, one MLflow parent run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from eval.compare import CompareSettings, Contender, _drift
from models.catalog import DEFAULT_MODEL
from models.lifecycle.gguf_facts import sha256
from tests.conftest import Server
from tests.models.lifecycle.conftest import Done, Store


def test_compare_reports_both_models_and_drift(comparison: Done, variants: dict[str, Any]) -> None:
    """The last line has the run, both models' figures at each concurrency, and a verdict."""
    assert comparison.code == 0, comparison.err[-3000:]
    result = comparison.json
    a, b = result["models"]
    assert a["sha256"] == sha256(DEFAULT_MODEL.gguf_path())
    assert (b["sha256"], b["uri"]) == (variants["Q8_0"]["sha256"], variants["Q8_0"]["uri"])
    for model in (a, b):
        assert model["file_size"] > 0 and model["load_time_s"] > 0 and model["rss_mb"] > 0
        assert set(model["concurrency"]) == {"1", "2"}
        for level in model["concurrency"].values():
            assert level["failed_requests"] == 0
            assert level["output_tok_per_s"] > 0 and level["ttft_p95_s"] > 0
            assert level["tpot_p95_s"] > 0
    drift = result["drift"]
    assert drift["verdict"] in ("drift", "no_drift")
    assert drift["n_pairs"] == 6 and drift["sample_sizes"] == {"pairs": 6}
    assert {p["name"] for p in drift["parts"]} >= {"MMD²", "centroid distance"}
    assert drift["detected"] is (drift["verdict"] == "drift")
    assert drift["detected"] is any(p["drifted"] for p in drift["parts"])
    assert -1.0 <= drift["paired_cosine_mean"] <= 1.0
    assert "B against A" in comparison.out and "c=2 tok/s" in comparison.out


def test_compare_is_one_parent_run_with_a_child_per_model(
    store: Store, comparison: Done, tmp_path: Path
) -> None:
    """MLflow: the parent holds the verdict, both hashes and the answers; a child per model."""
    client = MlflowClient(tracking_uri=store.uri)
    result = comparison.json
    parent = client.get_run(result["run_id"])
    assert parent.data.tags["drift.verdict"] == result["drift"]["verdict"]
    assert parent.data.tags["a_sha256"] == result["models"][0]["sha256"]
    assert parent.data.tags["b_sha256"] == result["models"][1]["sha256"]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.info.run_id for c in children) == sorted(m["run_id"] for m in result["models"])
    for child in children:
        assert child.data.metrics["c1_output_tok_per_s"] > 0 and child.data.metrics["rss_mb"] > 0
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"answers.jsonl", "comparison.json", "drift_report.html"} <= names
    page = client.download_artifacts(parent.info.run_id, "drift_report.html", str(tmp_path))
    assert f"Verdict: {result['drift']['verdict']}" in Path(page).read_text()


def test_compare_unknown_model_is_one_line(store: Store) -> None:
    """A model that is nowhere: exit 2 and one line, before any server starts."""
    done = store.models("compare", "smollm2-135m-instruct", "nowhere-q9")
    assert done.code == 2 and "no model 'nowhere-q9'" in done.err.strip().splitlines()[-1]
    assert "Traceback" not in done.err


def test_too_few_common_answers_is_insufficient_data() -> None:
    """Fewer answered prompts in common than the floor: insufficient_data, nothing tested."""
    settings = CompareSettings(concurrency="1")
    a = Contender("a", "a", {}, answers={1: {"p1": "Rome.", "p2": "Boil water.", "p3": "max()"}})
    b = Contender("b", "b", {}, answers={1: {"p1": "Rome", "p2": "Boil it.", "p4": "sorted()"}})
    drift, verdict = _drift(a, b, settings)
    assert (drift["verdict"], verdict.verdict) == ("insufficient_data", "insufficient_data")
    assert drift["n_pairs"] == 2 and not drift["detected"] and "at least 5" in drift["reason"]


def test_compare_on_a_running_server_model_against_itself(store: Store, server: Server) -> None:
    """--server-url: no server is started, no load time; a model against itself does not drift."""
    done = store.models(
        "compare", "smollm2-135m-instruct", "smollm2-135m-instruct", "--server-url", server.url,
        "--api-key", str(server.api_key), "--limit", "6", "--max-tokens", "8",
        "--concurrency", "1", "--permutations", "199",
    )  # fmt: skip
    assert done.code == 0, done.err[-3000:]
    result = done.json
    a, b = result["models"]
    assert a["sha256"] == b["sha256"] == sha256(DEFAULT_MODEL.gguf_path())
    assert a["load_time_s"] is None and a["rss_mb"] is None and a["quantization"] == "Q4_1"
    assert result["drift"]["verdict"] == "no_drift"
    assert {p["name"] for p in result["drift"]["parts"]} == {"MMD²", "centroid distance"}

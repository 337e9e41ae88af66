"""`myllama eval run` against the real server and the real 135M model, logged to a temp MLflow."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import Server
from tests.eval.cli_helpers import eval_cli, eval_fails, finish, start_eval

SYSTEM = "You are a helpful assistant."
ONE_WORD = "Answer every question with one word."


def _run_args(server: Server, store: str, *extra: str) -> list[str]:
    """`eval run` arguments for a short smoke run against `server`, logged to `store`."""
    return [
        "run",
        "--prompts",
        "smoke",
        "--limit",
        "6",
        "--max-tokens",
        "12",
        "--server-url",
        server.url,
        "--api-key",
        str(server.api_key),
        "--tracking-uri",
        store,
        *extra,
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A temp MLflow store shared by the module."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"


@pytest.fixture(scope="module")
def runs(server: Server, store: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A calibrated reference (two concurrency levels), then a same-settings and a one-word run."""
    html = tmp_path_factory.mktemp("report") / "word.html"
    code, reference, err = eval_cli(_run_args(server, store, "--concurrency", "2,4"))
    assert code == 0, err[-3000:]
    code, tagged, err = eval_cli(["tag-reference", reference["run_id"], "--tracking-uri", store])
    assert code == 0 and tagged["reference"] is True, err[-3000:]
    same = start_eval(_run_args(server, store, "--concurrency", "4"))
    word = start_eval(
        _run_args(
            server,
            store,
            "--concurrency",
            "4",
            "--system",
            ONE_WORD,
            "--reference",
            reference["run_id"],
            "--html",
            str(html),
        )
    )
    results: dict[str, Any] = {"reference": reference, "html": html}
    for name, process in (("same", same), ("word", word)):
        code, results[name], err = finish(process)
        assert code == 0, err[-3000:]
    return results


def test_reference_run_logs_everything_to_mlflow(runs: dict[str, dict], store: str) -> None:
    """The reference run logs its params, metrics, tags, child runs and artefacts."""
    reference = runs["reference"]
    assert reference["status"] == "FINISHED"
    assert reference["drift"]["detected"] is False and reference["drift"]["p_value"] is None
    assert "no reference" in reference["drift"]["reason"]
    assert reference["verdict"] == "insufficient_data" and reference["parts"] == []
    for level in (2, 4):
        assert reference["metrics"][f"c{level}_requests"] == 6
        assert reference["metrics"][f"c{level}_output_tok_per_s"] > 0
        assert (
            reference["metrics"][f"c{level}_ttft_s_p95"]
            >= reference["metrics"][f"c{level}_ttft_s_p50"]
        )
    client = MlflowClient(store)
    run = client.get_run(reference["run_id"])
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["model"] == "smollm2-135m-instruct"
    assert params["model_file"].endswith(".gguf") and len(params["model_sha256"]) == 64
    assert params["server.parallel"] == "8" and params["server.n_ctx"] == "2048"
    assert params["prompt_set"] == "smoke" and len(params["prompt_set_sha256"]) == 64
    assert params["embedder"] == "all-MiniLM-L6-v2" and params["temperature"] == "0.0"
    assert params["max_tokens"] == "12" and params["concurrency"] == "2,4"
    for name in ("c2_ttft_s_p50", "c4_tpot_s_p99", "c4_itl_s_p95", "c2_e2e_s_p50"):
        assert metrics[name] > 0
    assert 0 < metrics["calibration_threshold"] <= 0.999
    assert tags["drift.verdict"] == "insufficient_data" and tags["reference"] == "true"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert sorted(c.data.params["concurrency"] for c in children) == ["2", "4"]
    assert all(c.data.metrics["output_tokens"] > 0 for c in children)
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"answers.jsonl", "embeddings.npy", "prompt_ids.json", "noise_floor.npy"} <= files
    assert {"prompt_hashes.json", "verdict.json"} <= files
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/latency_cdf.png"
    }
    folder = Path(client.download_artifacts(run.info.run_id, "", None))
    vectors = np.load(folder / "embeddings.npy")
    ids = json.loads((folder / "prompt_ids.json").read_text())
    assert vectors.shape == (6, 384) and len(ids) == 6
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    answers = [json.loads(line) for line in (folder / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == 12 and {a["concurrency"] for a in answers} == {2, 4}
    assert all(a["answer"] and a["output_tokens"] <= 12 and a["error"] is None for a in answers)


def test_same_settings_rerun_is_not_drift(runs: dict[str, dict], store: str) -> None:
    """A rerun at the same settings against the tagged reference: no drift."""
    same = runs["same"]
    drift = same["drift"]
    assert drift["reference_run_id"] == runs["reference"]["run_id"]
    assert drift["detected"] is False and drift["p_value"] >= 0.05
    assert drift["calibration"].startswith("reference run")
    assert drift["paired_cosine_mean"] > 0.95
    assert same["verdict"] == "no_drift" and {p["name"] for p in same["parts"]} == {
        "MMD²",
        "centroid distance",
        "paired cosine",
    }
    assert all(p["p_adjusted"] >= p["p_value"] and p["threshold"] == 0.05 for p in same["parts"])
    tags = MlflowClient(store).get_run(same["run_id"]).data.tags
    assert tags["drift.verdict"] == "no_drift"
    assert tags["reference_run_id"] == runs["reference"]["run_id"]


def test_one_word_system_prompt_is_drift(runs: dict[str, dict], store: str) -> None:
    """A one-word system prompt against a normal reference: drift with p < 0.05."""
    word = runs["word"]
    drift = word["drift"]
    assert drift["detected"] is True and drift["p_value"] < 0.05, drift["reason"]
    assert drift["paired_cosine_mean"] < runs["same"]["drift"]["paired_cosine_mean"]
    assert drift["reason"].startswith("drift")
    assert word["verdict"] == "drift" and any(p["drifted"] for p in word["parts"])
    page = Path(runs["html"]).read_text()
    assert "Verdict: drift" in page and page.count("<svg") == 2  # paired cosines, embeddings
    client = MlflowClient(store)
    run = client.get_run(word["run_id"])
    assert run.data.params["system"] == ONE_WORD
    assert run.data.tags["drift.verdict"] == "drift"
    assert run.data.metrics["drift_p_value"] == pytest.approx(drift["p_value"])
    for name in ("drift_mmd_p_value", "drift_centroid_p_value", "drift_classifier_auc"):
        assert name in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/latency_cdf.png", "plots/similarity.png"}
    assert "drift_report.html" in {a.path for a in client.list_artifacts(run.info.run_id)}


def _decoding(server: Server) -> bool:
    """Whether the server is decoding a request now."""
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    return any(
        line.startswith("myllama_requests_running{") and float(line.split()[-1]) > 0
        for line in metrics.splitlines()
    )


def test_ctrl_c_ends_the_run_killed_with_what_it_has(server: Server, store: str) -> None:
    """SIGINT mid-run: exit 130, the run KILLED in MLflow with its answers so far."""
    args = _run_args(server, store, "--concurrency", "1", "--experiment", "interrupted")
    process = start_eval([*args, "--max-tokens", "64"])  # the last --max-tokens counts
    client = MlflowClient(store)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the run exists and one of its requests is decoding
        experiment = client.get_experiment_by_name("interrupted")
        if experiment and client.search_runs([experiment.experiment_id]) and _decoding(server):
            break
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    code, result, err = finish(process, timeout=120)
    assert code == 130, err[-3000:]
    assert result["status"] == "KILLED" and result["drift"]["detected"] is False
    run = client.get_run(result["run_id"])
    assert run.info.status == "KILLED"
    assert "answers.jsonl" in {a.path for a in client.list_artifacts(result["run_id"])}


def test_usage_problems_exit_with_a_message(store: str) -> None:
    """Bad flags exit 2; unknown prompt sets, servers and run ids are errors: exit 1."""
    code, err = eval_fails(["run", "--concurrency", "1,x", "--tracking-uri", store])
    assert code == 2 and "--concurrency" in err
    code, err = eval_fails(["run", "--prompts", "nope", "--tracking-uri", store])
    assert code == 1 and "prompt set not found" in err
    code, err = eval_fails(["run", "--prompts", "smoke", "--server-url", "http://127.0.0.1:9"])
    assert code == 1 and "cannot read the models" in err
    code, err = eval_fails(["tag-reference", "0" * 32, "--tracking-uri", store])
    assert code == 1 and "not found" in err

"""`myllama eval drift --llm`: real answers of the real server, logged by the completions log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from eval.latency import RequestRecord
from eval.loadgen import Sampling, run_level
from models.completions_log import CompletionEntry, CompletionsLog
from prompts.sets import Prompt, load_prompt_set
from tests.conftest import Server
from tests.eval.cli_helpers import eval_cli, eval_fails
from tests.helpers import free_port, running_myllama

MODEL = "smollm2-135m-instruct"
MAX_TOKENS = 8
PROMPTS = 6  # the first six smoke prompts


def _serve(server: Server, prompts: list[Prompt], temperature: float, path: Path) -> Path:
    """Send `prompts` to the real server (streamed, concurrency 2) and log what it answered."""
    sink: list[RequestRecord] = []
    sampling = Sampling(MODEL, None, temperature, MAX_TOKENS, None)
    asyncio.run(run_level(server.url, server.api_key, prompts, sampling, MODEL, 2, sink))
    errors = [f"{r.prompt_id}: {r.error}" for r in sink if not r.ok]
    assert not errors and len(sink) == len(prompts), errors
    by_id = {p.id: p for p in prompts}
    log = CompletionsLog(path)
    for record in sink:
        log.record(
            CompletionEntry(
                model_id=MODEL,
                prompt=by_id[record.prompt_id].with_system(None),
                answer=record.answer,
                sampling={"temperature": temperature, "max_tokens": MAX_TOKENS},
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.output_tokens,
                ttft_s=record.ttft,
                tpot_s=record.tpot,
                finish_reason=record.finish_reason,
            )
        )
    log.close()
    assert log.written == len(prompts)
    return path


@pytest.fixture(scope="module")
def setup(server: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A calibrated reference eval run (smoke set, two passes) in a temp store."""
    folder = tmp_path_factory.mktemp("llm-drift")
    store = f"sqlite:///{folder}/mlflow.db"
    args = ["run", "--prompts", "smoke", "--limit", str(PROMPTS), "--max-tokens", str(MAX_TOKENS)]
    args += ["--concurrency", "2"]
    args += ["--repeats", "2", "--server-url", server.url, "--api-key", str(server.api_key)]
    code, reference, err = eval_cli([*args, "--tracking-uri", store], cwd=folder)
    assert code == 0, err[-3000:]
    return {"store": store, "folder": folder, "reference": reference["run_id"]}


def _drift(setup: dict[str, Any], log_path: Path, *extra: str) -> tuple[int, dict, str]:
    args = ["drift", "--llm", "--completions-log", str(log_path), "--reference", setup["reference"]]
    return eval_cli([*args, "--tracking-uri", setup["store"], *extra], cwd=setup["folder"])


def test_same_settings_answers_are_paired_and_quiet(
    server: Server, setup: dict[str, Any], tmp_path: Path
) -> None:
    """The reference's prompts at its settings, twice: paired, no answer drift; all in MLflow."""
    smoke = list(load_prompt_set("smoke").head(PROMPTS).prompts)
    log_path = _serve(server, smoke + smoke, 0.0, tmp_path / "c.db")
    html = tmp_path / "report.html"
    code, result, err = _drift(setup, log_path, "--model", MODEL, "--html", str(html))
    assert code == 0, err[-3000:]
    parts = {(p["part"], p["name"]): p for p in result["parts"]}
    paired = parts[("answers", "paired cosine")]
    assert paired["n_current"] == 2 * PROMPTS and paired["drifted"] is False
    assert paired["details"]["prompts"] == PROMPTS and "flagged" in paired["details"]["power"]
    assert {("latency", "TTFT"), ("latency", "TPOT")} <= set(parts)
    assert parts[("latency", "TTFT")]["n_current"] == 2 * PROMPTS
    assert "answers unpaired" in result["skipped"]  # every live prompt was a reference prompt
    assert result["verdict"] in ("drift", "no_drift")  # latency on a shared machine may move
    assert result["verdict"] == (
        "drift" if any(p["drifted"] for p in parts.values()) else "no_drift"
    )
    assert f"Verdict: {result['verdict']}" in html.read_text()
    client = MlflowClient(setup["store"])
    run = client.get_run(result["run_id"])
    assert run.data.tags["drift.verdict"] == result["verdict"]
    assert run.data.tags["reference_run_id"] == setup["reference"]
    files = {a.path for a in client.list_artifacts(result["run_id"])}
    assert {"drift_report.html", "verdict.json", "live_embeddings.npy"} <= files


def test_hot_sampling_and_new_prompts_are_tested(
    server: Server, setup: dict[str, Any], tmp_path: Path
) -> None:
    """Temperature 1.8 on the reference prompts: paired drift; other prompts get MMD² and AUC."""
    smoke = list(load_prompt_set("smoke").head(PROMPTS).prompts)
    others = list(load_prompt_set("general").prompts)[:10]
    log_path = _serve(server, smoke + smoke + others, 1.8, tmp_path / "c.db")
    code, result, err = _drift(setup, log_path)
    assert code == 0, err[-3000:]
    parts = {(p["part"], p["name"]): p for p in result["parts"]}
    assert parts[("answers", "paired cosine")]["drifted"] is True
    assert result["verdict"] == "drift" and result["drift"]["detected"] is True
    unpaired = parts[("answers", "MMD² unpaired")]
    assert unpaired["n_current"] == 10 and unpaired["n_reference"] == PROMPTS
    assert 0.0 <= unpaired["details"]["classifier_auc"] <= 1.0


def test_a_short_window_and_bad_input(setup: dict[str, Any], tmp_path: Path) -> None:
    """A window with no answers is insufficient_data; a missing log or reference is an error."""
    log = CompletionsLog(tmp_path / "c.db")
    log.close()
    code, result, err = _drift(setup, tmp_path / "c.db")
    assert code == 0, err[-3000:]
    assert result["verdict"] == "insufficient_data" and "at least 10" in result["reason"]
    code, err = eval_fails(
        ["drift", "--llm", "--completions-log", str(tmp_path / "none.db"), "--reference",
         setup["reference"], "--tracking-uri", setup["store"]],
        cwd=setup["folder"],
    )  # fmt: skip
    assert code == 1 and "no completions log" in err
    code, err = eval_fails(["drift", "--llm"], cwd=setup["folder"])
    assert code == 2 and "--reference" in err


def test_a_served_conversation_logged_by_the_server_gets_a_verdict(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    """`myllama serve --log-completions`: its own log, paired by prompt hash with the reference."""
    port, log_path = free_port(), tmp_path / "served.db"
    args = ["serve", "--port", str(port), "--parallel", "2", "--n-ctx", "2048"]
    args += ["--no-load-predictors", "--log-completions", str(log_path)]
    url = f"http://127.0.0.1:{port}"
    smoke = list(load_prompt_set("smoke").head(PROMPTS).prompts)
    sink: list[RequestRecord] = []
    with running_myllama(args, f"{url}/health", log_name="served-log"):
        sampling = Sampling(MODEL, None, 0.0, MAX_TOKENS, None)
        asyncio.run(run_level(url, None, smoke + smoke, sampling, MODEL, 2, sink))
    assert all(r.ok for r in sink), [r.error for r in sink]
    code, result, err = _drift(setup, log_path)
    assert code == 0, err[-3000:]
    parts = {(p["part"], p["name"]): p for p in result["parts"]}
    paired = parts[("answers", "paired cosine")]
    assert paired["n_current"] == 2 * PROMPTS and paired["details"]["prompts"] == PROMPTS
    assert paired["drifted"] is False
    assert parts[("latency", "TTFT")]["n_current"] == 2 * PROMPTS
    assert result["reference"]["live_models"] == [MODEL]
    assert len(result["reference"]["live_gguf_sha256"][0]) == 64

"""Reference selection and tagging against a real (temporary) MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from eval.tracking import (
    EMBEDDINGS,
    KIND_TAG,
    LLM_EVAL,
    PROMPT_IDS,
    EvalError,
    find_reference,
    load_reference,
    tag_reference,
)
from tests.eval.cli_helpers import eval_cli

SHA = "a" * 64


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    """A client on a temp SQLite MLflow store."""
    return MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")


def _eval_run(
    client: MlflowClient, experiment: str, tmp: Path, started: int, sha: str = SHA
) -> str:
    """A finished eval-shaped run with two embeddings as artefacts."""
    tags = {KIND_TAG: LLM_EVAL, "prompt_set_sha256": sha}
    run = client.create_run(experiment, start_time=started, tags=tags)
    run_id = run.info.run_id
    np.save(tmp / EMBEDDINGS, np.eye(2, 384, dtype=np.float32))
    (tmp / PROMPT_IDS).write_text(json.dumps(["a", "b"]))
    client.log_artifact(run_id, str(tmp / EMBEDDINGS))
    client.log_artifact(run_id, str(tmp / PROMPT_IDS))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def test_latest_tagged_and_explicit_references(client: MlflowClient, tmp_path: Path) -> None:
    """Reference lookup: tagged by default, 'latest', or an explicit run id."""
    experiment = client.create_experiment("eval")
    first = _eval_run(client, experiment, tmp_path, started=1_000)
    second = _eval_run(client, experiment, tmp_path, started=2_000)
    _eval_run(client, experiment, tmp_path, started=3_000, sha="b" * 64)
    assert find_reference(client, experiment, SHA, None, exclude="") is None
    assert tag_reference(client, first)["reference"] is True
    found = find_reference(client, experiment, SHA, None, exclude="")
    assert found is not None and found.info.run_id == first
    latest = find_reference(client, experiment, SHA, "latest", exclude="")
    assert latest is not None and latest.info.run_id == second
    latest = find_reference(client, experiment, SHA, "latest", exclude=second)
    assert latest is not None and latest.info.run_id == first
    explicit = find_reference(client, experiment, SHA, second, exclude="")
    assert explicit is not None and explicit.info.run_id == second
    reference = load_reference(client, explicit)
    assert set(reference.embeddings) == {"a", "b"} and reference.noise_floor is None
    assert reference.embeddings["b"][1] == 1.0
    with pytest.raises(EvalError, match="not found"):
        find_reference(client, experiment, SHA, "f" * 32, exclude="")


def test_only_finished_eval_runs_become_references(client: MlflowClient) -> None:
    """Tagging refuses non-eval and unfinished runs; a run without embeddings cannot be loaded."""
    experiment = client.create_experiment("other")
    plain = client.create_run(experiment).info.run_id
    with pytest.raises(EvalError, match="not a `myllama eval run` run"):
        tag_reference(client, plain)
    running = client.create_run(experiment, tags={KIND_TAG: LLM_EVAL}).info.run_id
    with pytest.raises(EvalError, match="RUNNING"):
        tag_reference(client, running)
    with pytest.raises(EvalError, match="no embeddings"):
        load_reference(client, client.get_run(running))


def test_tag_reference_reads_the_tracking_uri_from_the_environment(
    client: MlflowClient, tmp_path: Path
) -> None:
    """`myllama eval tag-reference` without --tracking-uri uses MYLLAMA_TRACKING_URI."""
    experiment = client.create_experiment("eval")
    run_id = _eval_run(client, experiment, tmp_path, started=1_000)
    env = {"MYLLAMA_TRACKING_URI": client.tracking_uri}
    code, result, err = eval_cli(["tag-reference", run_id], timeout=120, env=env)
    assert code == 0 and result["reference"] is True, err[-3000:]
    assert client.get_run(run_id).data.tags["reference"] == "true"

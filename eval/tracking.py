"""MLflow at the edge: finding the reference run, reading its artefacts, tagging references."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

KIND_TAG = "myllama.kind"
LLM_EVAL = "llm-eval"
REFERENCE_TAG = "reference"
EMBEDDINGS = "embeddings.npy"
PROMPT_IDS = "prompt_ids.json"
NOISE_FLOOR = "noise_floor.npy"
PROMPT_HASHES = "prompt_hashes.json"  # prompt id → hash of the messages sent (completions log)


class EvalError(RuntimeError):
    """A problem the user can fix (bad reference, bad input file); reported without a traceback."""


@dataclass(frozen=True)
class Reference:
    """A reference run's first-pass embeddings by prompt id, and its noise floor if calibrated."""

    run_id: str
    embeddings: dict[str, np.ndarray]
    noise_floor: np.ndarray | None


def _latest(client: MlflowClient, experiment_id: str, query: str, exclude: str) -> Run | None:
    runs = client.search_runs(
        [experiment_id],
        filter_string=query,
        order_by=["attributes.start_time DESC"],
        max_results=10,
    )
    return next((r for r in runs if r.info.run_id != exclude), None)


def find_reference(
    client: MlflowClient, experiment_id: str, prompt_sha: str, wanted: str | None, exclude: str
) -> Run | None:
    """RUN_ID, 'latest' (same prompt set), or by default the latest run tagged reference."""
    if wanted and wanted != "latest":
        try:
            return client.get_run(wanted)
        except MlflowException as exc:
            raise EvalError(f"reference run {wanted!r} not found in the tracking store") from exc
    query = (
        f"tags.`{KIND_TAG}` = '{LLM_EVAL}' AND tags.prompt_set_sha256 = '{prompt_sha}' "
        "AND attributes.status = 'FINISHED'"
    )
    if wanted is None:
        query += f" AND tags.{REFERENCE_TAG} = 'true'"
    return _latest(client, experiment_id, query, exclude)


def _artifact(client: MlflowClient, run_id: str, name: str, folder: str) -> Path | None:
    try:
        return Path(client.download_artifacts(run_id, name, folder))
    except (MlflowException, OSError):
        return None


def load_reference(client: MlflowClient, run: Run) -> Reference:
    """Download a reference run's embeddings (and noise floor, if it has one)."""
    run_id = run.info.run_id
    with tempfile.TemporaryDirectory() as folder:
        vectors_path = _artifact(client, run_id, EMBEDDINGS, folder)
        ids_path = _artifact(client, run_id, PROMPT_IDS, folder)
        if vectors_path is None or ids_path is None:
            raise EvalError(f"run {run_id} has no {EMBEDDINGS}/{PROMPT_IDS}: not an eval run")
        vectors = np.load(vectors_path)
        ids = json.loads(ids_path.read_text())
        noise_path = _artifact(client, run_id, NOISE_FLOOR, folder)
        noise = np.load(noise_path) if noise_path is not None else None
    return Reference(run_id, dict(zip(ids, vectors, strict=True)), noise)


def tag_reference(client: MlflowClient, run_id: str) -> dict[str, Any]:
    """Mark an eval run as the reference of its prompt set."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise EvalError(f"run {run_id!r} not found in the tracking store") from exc
    if run.data.tags.get(KIND_TAG) != LLM_EVAL:
        raise EvalError(f"run {run_id} is not a `myllama eval run` run")
    if run.info.status != "FINISHED":
        raise EvalError(f"run {run_id} is {run.info.status}; only finished runs can be references")
    client.set_tag(run_id, REFERENCE_TAG, "true")
    return {"run_id": run_id, "reference": True, "prompt_set": run.data.tags.get("prompt_set")}

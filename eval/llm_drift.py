"""`myllama eval drift --llm`: the server's logged answers and latency against a reference run."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from scipy import stats

from eval import plots, report
from eval.embedding_drift import (
    NOISE_QUANTILE,
    calibrated_threshold,
    classifier_auc,
    mmd_test,
    paired_cosine,
)
from eval.settings import DriftSettings
from eval.tracking import KIND_TAG, LLM_EVAL, PROMPT_HASHES, EvalError, Reference, load_reference
from eval.verdict import Check, Verdict, decide
from models.completions_log import prompt_hash, read_completions
from models.embedder import Embedder
from prompts.sets import PromptSetError, load_prompt_set

log = logging.getLogger(__name__)

MIN_ANSWERS = 10  # fewer live answers in the window: insufficient_data
MIN_PAIRS = 5  # fewer answers to reference prompts: the paired test is skipped
MIN_UNPAIRED = 10  # fewer answers to other prompts: the MMD² test is skipped
MIN_LATENCIES = 10  # fewer TTFT / TPOT values on either side: that KS test is skipped


@dataclass
class LiveDrift:
    """The verdict, what it was compared with, and the plots of its parts."""

    verdict: Verdict
    against: dict[str, Any]
    figures: dict[str, Figure]
    embeddings: np.ndarray


def _reference_run(client: MlflowClient, run_id: str) -> Run:
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise EvalError(f"reference run {run_id!r} not found in the tracking store") from exc
    if run.data.tags.get(KIND_TAG) != LLM_EVAL:
        raise EvalError(f"run {run_id} is not a `myllama eval run` run")
    return run


def reference_hashes(client: MlflowClient, run: Run, folder: str) -> dict[str, str]:
    """Prompt hash → prompt id of the reference run (its artefact, else rebuilt from its set)."""
    try:
        path = client.download_artifacts(run.info.run_id, PROMPT_HASHES, folder)
        return {h: pid for pid, h in json.loads(Path(path).read_text()).items()}
    except (MlflowException, OSError):
        pass
    params = run.data.params
    try:
        prompt_set = load_prompt_set(params["prompt_set"]).head(int(params["prompt_count"]))
    except (KeyError, ValueError, PromptSetError):
        return {}
    if prompt_set.sha256 != params.get("prompt_set_sha256"):
        return {}
    system = params.get("system")
    system = None if system in (None, "None") else system
    return {prompt_hash(p.with_system(system)): p.id for p in prompt_set.prompts}


def reference_latency(client: MlflowClient, run_id: str, folder: str) -> pd.DataFrame:
    """TTFT and TPOT of every successful request of the reference run (answers.jsonl)."""
    try:
        path = client.download_artifacts(run_id, "answers.jsonl", folder)
    except (MlflowException, OSError):
        return pd.DataFrame({"ttft": [], "tpot": []})
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"ttft": [], "tpot": []})
    return frame[frame["error"].isna()][["ttft", "tpot"]].astype(float)


def _paired(
    live: pd.DataFrame,
    vectors: np.ndarray,
    hashes: dict[str, str],
    reference: Reference,
    skipped: dict[str, str],
    figures: dict[str, Figure],
) -> list[Check]:
    """Answers to prompts the reference answered: share below the calibrated paired cosine."""
    ids = [hashes.get(h) for h in live["prompt_hash"]]
    rows = [i for i, pid in enumerate(ids) if pid is not None and pid in reference.embeddings]
    if len(rows) < MIN_PAIRS:
        skipped["answers paired"] = (
            f"{len(rows)} answers to prompts the reference answered; at least {MIN_PAIRS} needed"
        )
        return []
    if reference.noise_floor is None:
        skipped["answers paired"] = (
            "the reference run has no noise floor (run it with --repeats 2): no calibrated "
            "paired-cosine threshold"
        )
        return []
    ref = np.array([reference.embeddings[ids[i]] for i in rows])  # type: ignore[index]
    cosines = paired_cosine(ref, vectors[rows])
    threshold = calibrated_threshold(reference.noise_floor)
    below = int(np.sum(cosines < threshold))
    p = float(stats.binomtest(below, len(rows), NOISE_QUANTILE, "greater").pvalue)
    critical = int(stats.binom.isf(0.05, len(rows), NOISE_QUANTILE)) + 1
    figures["answers:paired cosine"] = plots.samples_figure(
        f"paired cosine to the reference answer (threshold {threshold:.3f})",
        {"live vs reference": cosines, "reference noise floor": reference.noise_floor},
        "cosine similarity",
    )
    details = {
        "cosine_threshold": threshold,
        "expected_share_below": NOISE_QUANTILE,
        "share_below": below / len(rows),
        "paired_cosine_mean": float(cosines.mean()),
        "prompts": len({ids[i] for i in rows}),
        "power": f"with {len(rows)} pairs, {critical} or more below the threshold "
        f"({critical / len(rows):.0%}) is flagged at α = 0.05 before Holm",
    }
    n_ref = len(reference.noise_floor)
    return [
        Check(
            "answers",
            "paired cosine",
            "binomial_share_below",
            below / len(rows),
            p,
            n_ref,
            len(rows),
            details,
        )
    ]


def _unpaired(
    live: pd.DataFrame,
    vectors: np.ndarray,
    hashes: dict[str, str],
    reference: Reference,
    settings: DriftSettings,
    skipped: dict[str, str],
    figures: dict[str, Figure],
) -> list[Check]:
    """Answers to other prompts against all reference answers: MMD² permutation test, AUC."""
    rows = [
        i for i, h in enumerate(live["prompt_hash"]) if hashes.get(h) not in reference.embeddings
    ]
    if len(rows) < MIN_UNPAIRED:
        skipped["answers unpaired"] = (
            f"{len(rows)} answers to prompts outside the reference; at least {MIN_UNPAIRED} needed"
        )
        return []
    ref = np.array(list(reference.embeddings.values()))
    cur = vectors[rows]
    mmd2, p, sigma2 = mmd_test(ref, cur, settings.resamples, settings.seed)
    auc = classifier_auc(ref, cur, settings.seed) if min(len(ref), len(cur)) >= 2 else None
    figures["answers:MMD² unpaired"] = plots.embeddings_figure(ref, cur)
    details = {
        "rbf_sigma2": sigma2,
        "classifier_auc": auc,
        "classifier_auc_note": "cross-validated logistic regression, reference vs live; 0.5 = "
        "indistinguishable (descriptive, not in the Holm family)",
        "note": "these live prompts differ from the reference prompts, so a different topic mix "
        "alone can show as drift here; the paired test isolates the model",
        "power": f"{len(ref)} reference and {len(cur)} live answers, {settings.resamples} "
        "permutations (smallest p-value 1/(permutations+1))",
    }
    return [
        Check(
            "answers", "MMD² unpaired", "mmd2_rbf_permutation", mmd2, p, len(ref), len(cur), details
        )
    ]


def _latency(
    live: pd.DataFrame,
    reference: pd.DataFrame,
    skipped: dict[str, str],
    figures: dict[str, Figure],
) -> list[Check]:
    """TTFT and TPOT of the live answers against the reference run's: two-sample KS."""
    checks = []
    for name, live_col, ref_col in (("TTFT", "ttft_s", "ttft"), ("TPOT", "tpot_s", "tpot")):
        cur = live[live_col].dropna().to_numpy(float)
        ref = reference[ref_col].dropna().to_numpy(float)
        if min(len(cur), len(ref)) < MIN_LATENCIES:
            skipped[f"latency {name}"] = (
                f"{len(ref)} reference and {len(cur)} live values; at least {MIN_LATENCIES} each"
            )
            continue
        result = stats.ks_2samp(ref, cur)
        effective = round(len(ref) * len(cur) / (len(ref) + len(cur)))
        figures[f"latency:{name}"] = plots.samples_figure(
            name, {"reference": ref, "live": cur}, "seconds"
        )
        details = {
            "median_reference_s": float(np.median(ref)),
            "median_live_s": float(np.median(cur)),
            "ks_critical_distance_at_alpha": float(stats.kstwo.isf(0.05, effective)),
            "note": "reference: measured by the eval client (includes HTTP); live: measured by "
            "the server, so a small systematic gap is expected",
        }
        checks.append(
            Check(
                "latency",
                name,
                "ks_2samp",
                float(result.statistic),
                float(result.pvalue),
                len(ref),
                len(cur),
                details,
            )
        )
    return checks


def compare(settings: DriftSettings, client: MlflowClient) -> LiveDrift:
    """Read the window, embed its answers, run every part's test and decide."""
    assert settings.reference is not None
    if not settings.completions_log.is_file():
        raise EvalError(f"no completions log at {settings.completions_log}")
    run = _reference_run(client, settings.reference)
    live = read_completions(settings.completions_log, settings.since, settings.model)
    reference = load_reference(client, run)
    against: dict[str, Any] = {
        "reference_run_id": run.info.run_id,
        "reference_model": run.data.params.get("model"),
        "reference_model_sha256": run.data.params.get("model_sha256"),
        "reference_prompt_set": run.data.params.get("prompt_set"),
        "completions_log": str(settings.completions_log),
        "live_models": sorted(live["model_id"].unique().tolist()),
        "live_gguf_sha256": sorted(live["gguf_sha256"].dropna().unique().tolist()),
    }
    sizes = {"live_answers": len(live), "reference_answers": len(reference.embeddings)}
    if len(live) < MIN_ANSWERS:
        reason = f"{len(live)} logged answers in the window; at least {MIN_ANSWERS} are needed"
        return LiveDrift(
            decide([], settings.alpha, sizes, insufficient=reason), against, {}, np.empty(0)
        )
    with tempfile.TemporaryDirectory() as folder:
        hashes = reference_hashes(client, run, folder)
        latency = reference_latency(client, run.info.run_id, folder)
    vectors = Embedder().embed(live["answer"].tolist())
    skipped: dict[str, str] = {}
    figures: dict[str, Figure] = {}
    checks = _paired(live, vectors, hashes, reference, skipped, figures)
    checks += _unpaired(live, vectors, hashes, reference, settings, skipped, figures)
    checks += _latency(live, latency, skipped, figures)
    sizes |= {"reference_latencies": len(latency)}
    verdict = decide(checks, settings.alpha, sizes, skipped)
    return LiveDrift(verdict, against, figures, vectors)


def execute(settings: DriftSettings) -> dict[str, Any]:
    """Compare, log one MLflow run with the HTML report, and return the last-line JSON."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = MlflowClient(settings.tracking_uri)
    found = compare(settings, client)
    verdict = found.verdict
    mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(run_name=f"llm-drift-{settings.model or 'all'}") as run:
        mlflow.set_tags(
            {
                KIND_TAG: "llm-drift",
                "reference_run_id": found.against["reference_run_id"],
                "drift.verdict": verdict.verdict,
                "drift.reason": verdict.reason[:5000],
            }
        )
        mlflow.log_params(
            {
                "completions_log": str(settings.completions_log),
                "since": settings.since.isoformat() if settings.since else None,
                "model": settings.model,
                "reference": settings.reference,
                "alpha": settings.alpha,
                "resamples": settings.resamples,
                "min_answers": MIN_ANSWERS,
            }
        )
        metrics = {k: float(v) for k, v in verdict.sample_sizes.items()}
        for p in verdict.parts:
            key = f"{p.part}.{p.name}".replace(" ", "_").replace("²", "2")
            metrics |= {f"{key}.statistic": p.statistic, f"{key}.p_value": p.p_value}
            metrics |= {f"{key}.p_adjusted": p.p_adjusted, f"{key}.drifted": float(p.drifted)}
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})
        mlflow.log_dict(verdict.as_json(), "verdict.json")
        page = report.render(
            "Live LLM drift", verdict, {"run_id": run.info.run_id, **found.against}, found.figures
        )
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(report.write(page, Path(tmp) / report.REPORT_FILE)))
            if len(found.embeddings):
                np.save(Path(tmp) / "live_embeddings.npy", found.embeddings.astype(np.float32))
                mlflow.log_artifact(str(Path(tmp) / "live_embeddings.npy"))
        if settings.html is not None:
            report.write(page, settings.html)
    drift = {"detected": verdict.detected, "reason": verdict.reason}
    return {
        "run_id": run.info.run_id,
        "status": "FINISHED",
        **verdict.as_json(),
        "reference": found.against,
        "drift": drift,
    }

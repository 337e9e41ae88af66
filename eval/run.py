"""`myllama eval run`: load-test the server, embed its answers, compare, log to MLflow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from openai import OpenAIError
from rich.console import Console
from rich.progress import Progress

from eval import plots, report
from eval.embedding_drift import (
    NOISE_QUANTILE,
    DriftReport,
    calibrated_threshold,
    compare,
    paired_cosine,
)
from eval.latency import RequestRecord, summarise
from eval.loadgen import Sampling, base_url, run_level, server_models, trace_requests
from eval.settings import EvalRunSettings
from eval.tracking import (
    EMBEDDINGS,
    KIND_TAG,
    LLM_EVAL,
    NOISE_FLOOR,
    PROMPT_HASHES,
    PROMPT_IDS,
    EvalError,
    Reference,
    find_reference,
    load_reference,
)
from eval.verdict import INSUFFICIENT, Check, Verdict, decide
from models.completions_log import prompt_hash
from models.embedder import Embedder
from prompts.sets import PromptSet, load_prompt_set

log = logging.getLogger(__name__)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run. A subclass, because CPython marks a process killed by SIGINT when a
    plain KeyboardInterrupt crosses some native code (it checks the exact type), even if caught."""


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """While the run lasts (in the main thread), SIGINT raises Interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


Pass = tuple[int, int]  # (concurrency, repeat)


def _server_facts(settings: EvalRunSettings) -> tuple[str, dict[str, Any]]:
    """The model id to use and its /v1/models "meta" (file, hash, server settings)."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        cards = asyncio.run(server_models(settings.server_url, key))
        model = settings.model
        if model is None:
            health = httpx.get(base_url(settings.server_url).removesuffix("/v1") + "/health")
            model = health.json().get("default_model") or cards[0]["id"]
    except (OpenAIError, httpx.HTTPError, ValueError, IndexError) as exc:
        raise EvalError(f"cannot read the models of {settings.server_url}: {exc}") from exc
    card = next((c for c in cards if c["id"] == model), None)
    if card is None:
        raise EvalError(f"the server has no model {model!r}; it serves {[c['id'] for c in cards]}")
    return model, card.get("meta") or {}


def _params(
    settings: EvalRunSettings,
    prompt_set: PromptSet,
    model: str,
    meta: dict[str, Any],
    emb: Embedder,
) -> dict[str, Any]:
    server = {
        f"server.{k}": meta.get(k)
        for k in (
            "n_ctx",
            "ctx_size",
            "n_ctx_train",
            "parallel",
            "n_batch",
            "max_queue",
            "n_threads",
            "n_gpu_layers",
            "description",
            "chat_template_sha256",
        )
    }
    return {
        "model": model,
        "model_file": meta.get("file_name"),
        "model_sha256": meta.get("file_sha256"),
        **server,
        "server_url": settings.server_url,
        "prompt_set": prompt_set.name,
        "prompt_set_sha256": prompt_set.sha256,
        "prompt_count": len(prompt_set),
        "system": settings.system,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "concurrency": settings.concurrency,
        "repeats": settings.repeats,
        "embedder": emb.model_id,
        "embedder_dim": emb.dimension,
        "alpha": settings.alpha,
        "permutations": settings.permutations,
    }


def _load_passes(
    settings: EvalRunSettings,
    prompt_set: PromptSet,
    model: str,
    passes: dict[Pass, list[RequestRecord]],
    progress: Progress,
) -> dict[str, float]:
    """Every pass over the prompt set; a child run and parent metrics per pass."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    sampling = Sampling(
        model, settings.system, settings.temperature, settings.max_tokens, settings.seed
    )
    task = progress.add_task(
        "requests", total=len(prompt_set) * len(settings.levels) * settings.repeats
    )
    headline: dict[str, float] = {}
    for concurrency in settings.levels:
        for repeat in range(settings.repeats):
            sink = passes.setdefault((concurrency, repeat), [])
            progress.update(task, description=f"concurrency {concurrency}")
            wall = asyncio.run(
                run_level(
                    settings.server_url,
                    key,
                    list(prompt_set.prompts),
                    sampling,
                    model,
                    concurrency,
                    sink,
                    lambda _: progress.advance(task),
                )
            )
            figures = summarise(sink, wall)
            name = f"concurrency-{concurrency}" + (f"-pass-{repeat + 1}" if repeat else "")
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.log_params({"concurrency": concurrency, "pass": repeat + 1})
                mlflow.log_metrics(figures)
            mlflow.log_metrics({f"c{concurrency}_{k}": v for k, v in figures.items()}, step=repeat)
            if repeat == 0:
                headline |= {f"c{concurrency}_{k}": v for k, v in figures.items()}
    return headline


def _answers_jsonl(passes: dict[Pass, list[RequestRecord]], folder: Path) -> Path:
    path = folder / "answers.jsonl"
    with path.open("w") as fh:
        for (concurrency, repeat), records in passes.items():
            for r in records:
                row = {"concurrency": concurrency, "pass": repeat + 1, **asdict(r), "tpot": r.tpot}
                row.pop("token_times")
                fh.write(json.dumps(row) + "\n")
    return path


def _embed_passes(
    passes: dict[Pass, list[RequestRecord]], order: list[str], embedder: Embedder
) -> dict[Pass, dict[str, np.ndarray]]:
    """Embeddings of each pass's successful answers, by prompt id (one embed call)."""
    texts = sorted({r.answer for records in passes.values() for r in records if r.ok})
    vectors = dict(zip(texts, embedder.embed(texts), strict=True))
    rank = {pid: i for i, pid in enumerate(order)}
    return {
        key: {
            r.prompt_id: vectors[r.answer]
            for r in sorted(records, key=lambda r: rank[r.prompt_id])
            if r.ok
        }
        for key, records in passes.items()
    }


def _noise_floor(embedded: dict[Pass, dict[str, np.ndarray]], first: Pass) -> np.ndarray | None:
    """Paired cosines between the first pass and every other same-settings pass."""
    base = embedded[first]
    parts = []
    for key, other in embedded.items():
        common = [pid for pid in base if pid in other]
        if key != first and common:
            a = np.array([base[p] for p in common])
            b = np.array([other[p] for p in common])
            parts.append(paired_cosine(a, b))
    return np.concatenate(parts) if parts else None


def _verdict(outcome: DriftReport, n: int, alpha: float, threshold: float | None) -> Verdict:
    """The tests of `compare` under the one verdict contract (Holm = the Bonferroni minimum)."""
    m = outcome.metrics
    auc = {"classifier_auc": m["classifier_auc"], "paired_cosine_mean": m["paired_cosine_mean"]}
    checks = [
        Check("answers", "MMD²", "mmd2_rbf_permutation", m["mmd2"], m["mmd_p_value"], n, n, auc),
        Check(
            "answers",
            "centroid distance",
            "centroid_cosine_bootstrap",
            m["centroid_distance"],
            m["centroid_p_value"],
            n,
            n,
        ),
    ]
    if threshold is not None:
        checks.append(
            Check(
                "answers",
                "paired cosine",
                "binomial_share_below",
                m["share_below_threshold"],
                m["share_below_p_value"],
                n,
                n,
                {"cosine_threshold": threshold, "expected_share_below": NOISE_QUANTILE},
            )
        )
    return decide(checks, alpha, {"paired_prompts": n})


def _drift(
    settings: EvalRunSettings,
    reference: Reference | None,
    current: dict[str, np.ndarray],
    own_noise: np.ndarray | None,
    folder: Path,
) -> tuple[dict[str, Any], list[Path], Verdict, dict[str, Figure]]:
    """Compare with the reference; the drift JSON, plot files, the verdict and report plots."""
    if reference is None:
        reason = "no reference run for this prompt set; tag one: myllama eval tag-reference RUN_ID"
        verdict = decide([], settings.alpha, {"paired_prompts": 0}, insufficient=reason)
        none: dict[str, Any] = {"detected": False, "p_value": None, "reason": reason}
        return {**none, "reference_run_id": None}, [], verdict, {}
    common = [pid for pid in current if pid in reference.embeddings]
    if len(common) < 2:
        raise EvalError(
            f"run {reference.run_id} shares fewer than two answered prompts with this run"
        )
    noise, source = reference.noise_floor, f"reference run {reference.run_id}"
    if noise is None and own_noise is not None:
        noise, source = own_noise, "this run's repeated passes"
    threshold = calibrated_threshold(noise) if noise is not None else None
    ref = np.array([reference.embeddings[p] for p in common])
    cur = np.array([current[p] for p in common])
    outcome = compare(ref, cur, threshold, settings.alpha, settings.permutations)
    verdict = _verdict(outcome, len(common), settings.alpha, threshold)
    drift: dict[str, Any] = {
        **outcome.metrics,
        **outcome.as_json(),
        "detected": verdict.detected,
        "reference_run_id": reference.run_id,
        "calibration": source if threshold is not None else "none (no same-settings passes)",
    }
    plot = plots.similarity(common, outcome.paired, threshold, folder / "similarity.png")
    samples = {"this run vs reference": outcome.paired}
    figures = {
        "answers:paired cosine": plots.samples_figure(
            "paired cosine to the reference answer",
            samples if noise is None else samples | {"same-settings noise floor": noise},
            "cosine similarity",
        ),
        "answers:MMD²": plots.embeddings_figure(ref, cur),
    }
    return drift, [plot], verdict, figures


def _finish(
    settings: EvalRunSettings,
    prompt_set: PromptSet,
    passes: dict[Pass, list[RequestRecord]],
    embedder: Embedder,
    run_id: str,
    folder: Path,
) -> dict[str, Any]:
    """Embed, compare, log artefacts, the verdict and its HTML report; the drift JSON."""
    client = MlflowClient()
    order = [p.id for p in prompt_set.prompts]
    first = (settings.levels[0], 0)
    embedded = _embed_passes(passes, order, embedder)
    current = embedded[first]
    np.save(folder / EMBEDDINGS, np.array(list(current.values()), dtype=np.float32))
    (folder / PROMPT_IDS).write_text(json.dumps(list(current)))
    hashes = {p.id: prompt_hash(p.with_system(settings.system)) for p in prompt_set.prompts}
    (folder / PROMPT_HASHES).write_text(json.dumps(hashes))
    own_noise = _noise_floor(embedded, first)
    artefacts = [folder / EMBEDDINGS, folder / PROMPT_IDS, folder / PROMPT_HASHES]
    if own_noise is not None:
        np.save(folder / NOISE_FLOOR, own_noise)
        artefacts.append(folder / NOISE_FLOOR)
        mlflow.log_metrics(
            {
                "noise_floor_mean": float(own_noise.mean()),
                "calibration_threshold": calibrated_threshold(own_noise),
            }
        )
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    found = find_reference(client, experiment_id, prompt_set.sha256, settings.reference, run_id)
    reference = load_reference(client, found) if found is not None else None
    drift, plot_files, verdict, figures = _drift(settings, reference, current, own_noise, folder)
    levels = {c: passes[(c, 0)] for c in settings.levels if (c, 0) in passes}
    plot_files.append(plots.latency_cdfs(levels, folder / "latency_cdf.png"))
    for path in artefacts:
        mlflow.log_artifact(str(path))
    for path in plot_files:
        mlflow.log_artifact(str(path), "plots")
    numeric = {f"drift_{k}": float(v) for k, v in drift.items() if isinstance(v, (int, float))}
    mlflow.log_metrics(numeric)
    mlflow.set_tags(
        {
            "reference_run_id": drift["reference_run_id"] or "",
            "drift.verdict": verdict.verdict,
            "drift.reason": drift["reason"][:5000],
            "calibration": str(drift.get("calibration", "")),
        }
    )
    mlflow.log_dict(verdict.as_json(), "verdict.json")
    if reference is not None:
        against = {"run_id": run_id, "reference_run_id": reference.run_id}
        page = report.render(f"Output drift: {prompt_set.name}", verdict, against, figures)
        mlflow.log_artifact(str(report.write(page, folder / report.REPORT_FILE)))
        if settings.html is not None:
            report.write(page, settings.html)
    return {**drift, "verdict": verdict.as_json()}


def execute(settings: EvalRunSettings) -> tuple[dict[str, Any], int]:
    """Run the evaluation; the last-line JSON and the exit code (130 when interrupted)."""
    prompt_set = load_prompt_set(settings.prompts).head(settings.limit)
    model, meta = _server_facts(settings)
    embedder = Embedder()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment(settings.experiment)
    if settings.trace:
        trace_requests()
    run = mlflow.start_run(run_name=f"{prompt_set.name}-{model}")
    run_id = run.info.run_id
    mlflow.set_tags(
        {
            KIND_TAG: LLM_EVAL,
            "prompt_set": prompt_set.name,
            "prompt_set_sha256": prompt_set.sha256,
        }
    )
    mlflow.log_params(_params(settings, prompt_set, model, meta, embedder))
    passes: dict[Pass, list[RequestRecord]] = {}
    metrics: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Progress(console=Console(stderr=True)) as progress,
        _interruptible(),
    ):
        folder = Path(tmp)
        try:
            metrics = _load_passes(settings, prompt_set, model, passes, progress)
            progress.stop()
            drift = _finish(settings, prompt_set, passes, embedder, run_id, folder)
        except KeyboardInterrupt:
            log.warning(
                "interrupted: logging the %d passes started, run marked KILLED", len(passes)
            )
            mlflow.log_artifact(str(_answers_jsonl(passes, folder)))
            mlflow.set_tag("drift.verdict", "killed")
            mlflow.end_run("KILLED")
            reason = "interrupted before the comparison"
            drift = {"detected": False, "p_value": None, "reason": reason}
            result = {"run_id": run_id, "status": "KILLED", "verdict": INSUFFICIENT}
            return {**result, "reason": reason, "metrics": metrics, "drift": drift}, 130
        except BaseException:
            mlflow.end_run("FAILED")
            raise
        mlflow.log_artifact(str(_answers_jsonl(passes, folder)))
    mlflow.end_run("FINISHED")
    metrics |= {f"drift_{k}": v for k, v in drift.items() if isinstance(v, (int, float))}
    verdict = drift.pop("verdict")
    result = {"run_id": run_id, "status": "FINISHED", **verdict, "metrics": metrics, "drift": drift}
    return result, 0

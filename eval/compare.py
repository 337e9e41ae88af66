"""`myllama models compare A B`: serve both, measure speed and output drift of B against A, log."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from openai import OpenAIError
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cli_settings import add_settings_flags, load_settings
from eval import report as html_report
from eval.embedding_drift import DriftReport, calibrated_threshold, compare, paired_cosine
from eval.latency import RequestRecord, summarise
from eval.loadgen import Sampling, run_level, server_models
from eval.local_server import serving
from eval.tracking import EvalError
from eval.verdict import Check, Verdict, decide
from models.lifecycle.actions import A_SHA, B_SHA, COMPARE_EXPERIMENT, COMPARE_KIND, VERDICT
from models.lifecycle.registry import KIND_TAG, tracking_uri_from_env

log = logging.getLogger(__name__)

MIN_PAIRS = 5  # fewer answered prompts in common than this: verdict insufficient_data


class CompareSettings(BaseSettings):
    """What `myllama models compare` can be told (besides A and B).

    Variables are MYLLAMA_COMPARE_*, so the UI's MYLLAMA_SERVER_URL never turns on --server-url;
    the store defaults to MYLLAMA_TRACKING_URI like every other command.
    """

    model_config = SettingsConfigDict(env_prefix="MYLLAMA_COMPARE_", extra="ignore")

    prompts: str = Field(default="smoke", description="Prompt set: a shipped name or a JSONL path.")
    concurrency: str = Field(default="1,8", description="Comma-separated concurrency levels.")
    server_url: str | None = Field(
        default=None,
        description="Use this running server (serving A and B) instead of starting one.",
    )
    api_key: SecretStr | None = Field(default=None, description="The server's API key, if any.")
    max_tokens: int | None = Field(
        default=None, ge=1, description="Output token limit (default: each prompt's, else 256)."
    )
    limit: int | None = Field(default=None, ge=2, description="Use only the first N prompts.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    seed: int | None = Field(default=0, description="Sampling seed sent with every request.")
    n_ctx: int = Field(default=2048, ge=64, description="Context per request of the served models.")
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads of the server.")
    tracking_uri: str = Field(
        default_factory=tracking_uri_from_env, description="MLflow tracking URI (and registry)."
    )
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Significance level.")
    permutations: int = Field(default=1000, ge=99, description="Permutations per drift test.")

    @field_validator("concurrency")
    @classmethod
    def _levels(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("give positive integers separated by commas, e.g. 1,8")
        return ",".join(parts)

    @property
    def levels(self) -> list[int]:
        """The concurrency levels, in the order given."""
        return [int(p) for p in self.concurrency.split(",")]


@dataclass
class Contender:
    """One side of the comparison: what it is, how it served, what it measured."""

    ref: str
    served_id: str
    facts: dict[str, Any]
    load_time_s: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    levels: dict[int, dict[str, float]] = field(default_factory=dict)
    answers: dict[int, dict[str, str]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The per-model object of the last-line JSON."""
        levels = {
            str(c): {
                "output_tok_per_s": m.get("output_tok_per_s"),
                "ttft_p95_s": m.get("ttft_s_p95"),
                "tpot_p95_s": m.get("tpot_s_p95"),
                "failed_requests": int(m.get("failed_requests", 0)),
            }
            for c, m in self.levels.items()
        }
        return {
            "ref": self.ref,
            "id": self.served_id,
            **self.facts,
            "load_time_s": self.load_time_s,
            "rss_mb": self.rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "concurrency": levels,
        }


@contextmanager
def _serve_one(
    contender: Contender, path: str, settings: CompareSettings, folder: Path
) -> Iterator[str]:
    """Serve only this model; record its time to ready and its RSS after load and at the end."""
    parallel = max(settings.levels)
    flags = ["--parallel", str(parallel), "--n-batch", str(max(512, parallel)),
             "--n-ctx", str(settings.n_ctx), "--max-queue", str(4 * parallel),
             "--log-level", "warning"]  # fmt: skip
    if settings.n_threads:
        flags += ["--n-threads", str(settings.n_threads)]
    with serving(f"{contender.served_id}={path}", folder, flags) as server:
        contender.load_time_s = server.ready_s
        contender.rss_mb = server.memory_mb()[0]
        yield server.url
        contender.peak_rss_mb = server.memory_mb()[1]


def _measure(contender: Contender, url: str, settings: CompareSettings, prompt_set: Any) -> None:
    """Every concurrency level over the prompt set against one served model."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    sampling = Sampling(
        contender.served_id, None, settings.temperature, settings.max_tokens, settings.seed
    )
    warm_up = Sampling(contender.served_id, None, 0.0, 2, None)  # first-request costs, unmeasured
    asyncio.run(
        run_level(url, key, list(prompt_set.prompts[:1]), warm_up, contender.served_id, 1, [])
    )
    for level in settings.levels:
        sink: list[RequestRecord] = []
        wall = asyncio.run(
            run_level(
                url, key, list(prompt_set.prompts), sampling, contender.served_id, level, sink
            )
        )
        contender.levels[level] = summarise(sink, wall)
        contender.answers[level] = {r.prompt_id: r.answer for r in sink if r.ok}
        contender.records += [
            {
                "model": contender.served_id,
                "concurrency": level,
                "prompt_id": r.prompt_id,
                "answer": r.answer,
                "output_tokens": r.output_tokens,
                "error": r.error,
            }
            for r in sink
        ]
        log.info(
            "%s at concurrency %d: %.1f tok/s",
            contender.served_id,
            level,
            contender.levels[level]["output_tok_per_s"],
        )


def _local_contenders(a: str, b: str, settings: CompareSettings) -> list[tuple[Contender, str]]:
    """Find A and B in the catalog / registry / file system; their facts and GGUF paths."""
    from models.lifecycle.gguf_facts import read_facts
    from models.lifecycle.inventory import locate, open_registry

    registry = open_registry(settings.tracking_uri)
    out: list[tuple[Contender, str]] = []
    for ref in (a, b):
        found = locate(ref, registry)
        facts = read_facts(found.path).as_dict()
        variant = found.variant or (registry.find(facts["sha256"]) if registry else None)
        facts["uri"] = variant.uri if variant else None
        served = found.model_id if not out or out[0][0].served_id != found.model_id else f"{ref}-b"
        out.append((Contender(ref, served, facts), str(found.path)))
    return out


def _remote_contenders(a: str, b: str, settings: CompareSettings) -> list[Contender]:
    """A and B as served by --server-url: facts from its /v1/models."""
    assert settings.server_url is not None
    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        cards = {
            c["id"]: c.get("meta") or {}
            for c in asyncio.run(server_models(settings.server_url, key))
        }
    except (OpenAIError, httpx.HTTPError) as exc:
        raise EvalError(f"cannot read the models of {settings.server_url}: {exc}") from exc
    out = []
    for ref in (a, b):
        if ref not in cards:
            raise EvalError(
                f"{settings.server_url} does not serve {ref!r}; it serves {sorted(cards)}"
            )
        meta = cards[ref]
        facts = {
            "path": meta.get("file"),
            "file_size": meta.get("file_size"),
            "sha256": meta.get("file_sha256"),
            "quantization": str(meta.get("description", "")).rsplit(" ", 1)[-1] or None,
            "n_params": meta.get("n_params"),
            "n_ctx_train": meta.get("n_ctx_train"),
            "uri": None,
        }
        out.append(Contender(ref, ref, facts))
    return out


def _checks(report: DriftReport, n: int) -> list[Check]:
    """The harness's statistics of B against A as the house verdict's tests."""
    m = report.metrics
    extra = {"paired_cosine_mean": m["paired_cosine_mean"], "classifier_auc": m["classifier_auc"]}
    checks = [
        Check("answers", "MMD²", "RBF kernel, median heuristic, permutation p-value",
              m["mmd2"], m["mmd_p_value"], n, n, extra),
        Check("answers", "centroid distance", "cosine distance of the mean embeddings, bootstrap",
              m["centroid_distance"], m["centroid_p_value"], n, n),
    ]  # fmt: skip
    if "cosine_threshold" in m:
        checks.append(
            Check("answers", "paired cosine", "share below the calibrated cosine, binomial",
                  m["share_below_threshold"], m["share_below_p_value"], n, n,
                  {"threshold": m["cosine_threshold"], "paired_cosine_p5": m["paired_cosine_p5"]})
        )  # fmt: skip
    return checks


def _drift(
    first: Contender, second: Contender, settings: CompareSettings
) -> tuple[dict[str, Any], Verdict]:
    """B's answers against A's at the first level, calibrated by each model's own reruns."""
    from models.embedder import Embedder

    level = settings.levels[0]
    ref, cur = first.answers.get(level, {}), second.answers.get(level, {})
    common = [pid for pid in ref if pid in cur]
    sizes = {"pairs": len(common)}
    if len(common) < MIN_PAIRS:
        reason = f"{len(common)} prompts answered by both; at least {MIN_PAIRS} needed"
        verdict = decide([], settings.alpha, sizes, insufficient=reason)
        return {**verdict.as_json(), "detected": False, "n_pairs": len(common)}, verdict
    reruns = [
        (c.answers[level], c.answers[other])
        for c in (first, second)
        for other in settings.levels[1:]
        if other != level
    ]
    texts = sorted(
        {t for c in (first, second) for answers in c.answers.values() for t in answers.values()}
    )
    vectors = dict(zip(texts, Embedder().embed(texts), strict=True))
    noise = [
        paired_cosine(
            np.array([vectors[x[p]] for p in both]), np.array([vectors[y[p]] for p in both])
        )
        for x, y in reruns
        if (both := [p for p in x if p in y])
    ]
    threshold = calibrated_threshold(np.concatenate(noise)) if noise else None
    report = compare(
        np.array([vectors[ref[p]] for p in common]),
        np.array([vectors[cur[p]] for p in common]),
        threshold,
        settings.alpha,
        settings.permutations,
    )
    verdict = decide(_checks(report, len(common)), settings.alpha, sizes)
    numbers = {k: v for k, v in report.metrics.items() if k not in ("p_value", "detected")}
    calibration = "reruns at the other concurrency levels" if noise else "none (one level)"
    drift = {**numbers, **verdict.as_json(), "detected": verdict.detected}
    return drift | {"n_pairs": len(common), "calibration": calibration}, verdict


def _log_child(contender: Contender, prompt_set: Any, experiment_id: str) -> str:
    """A nested MLflow run with one model's facts and figures."""
    import mlflow

    with mlflow.start_run(
        experiment_id=experiment_id, run_name=contender.served_id, nested=True
    ) as child:
        facts = {k: v for k, v in contender.facts.items() if v is not None}
        mlflow.log_params({"ref": contender.ref, "served_id": contender.served_id, **facts})
        figures = {
            "load_time_s": contender.load_time_s,
            "rss_mb": contender.rss_mb,
            "peak_rss_mb": contender.peak_rss_mb,
            "file_size": contender.facts.get("file_size"),
        }
        for level, metrics in contender.levels.items():
            figures |= {f"c{level}_{k}": v for k, v in metrics.items()}
        mlflow.log_metrics({k: float(v) for k, v in figures.items() if v is not None})
        mlflow.set_tag("prompt_set_sha256", prompt_set.sha256)
        return str(child.info.run_id)


def _table(contenders: list[Contender], drift: dict[str, Any], levels: list[int]) -> None:
    """The side-by-side table, on stdout."""
    from rich.console import Console
    from rich.table import Table

    def fmt(value: Any, scale: float = 1.0, digits: int = 1) -> str:
        return "–" if value is None else f"{value * scale:.{digits}f}"

    table = Table(title=f"B against A; output drift: {drift['verdict']}")
    table.add_column("figure")
    for side, c in zip("AB", contenders, strict=True):
        table.add_column(f"{side}: {c.served_id}")
    rows: list[tuple[str, list[str]]] = [
        ("quantisation", [str(c.facts.get("quantization")) for c in contenders]),
        ("file size (MB)", [fmt(c.facts.get("file_size"), 1e-6) for c in contenders]),
        ("load time (s)", [fmt(c.load_time_s, digits=2) for c in contenders]),
        ("RSS after load (MB)", [fmt(c.rss_mb) for c in contenders]),
    ]
    for level in levels:
        m = [c.levels.get(level, {}) for c in contenders]
        rows += [
            (f"c={level} tok/s", [fmt(x.get("output_tok_per_s")) for x in m]),
            (f"c={level} TTFT p95 (ms)", [fmt(x.get("ttft_s_p95"), 1e3) for x in m]),
            (f"c={level} TPOT p95 (ms)", [fmt(x.get("tpot_s_p95"), 1e3) for x in m]),
        ]
    for name, cells in rows:
        table.add_row(name, *cells)
    console = Console(width=160)
    console.print(table)
    console.print(f"drift of B against A: {drift.get('reason', '')}", soft_wrap=True)


def _record(
    run_id: str,
    contenders: list[Contender],
    drift: dict[str, Any],
    verdict: Verdict,
    prompt_set: Any,
    folder: Path,
) -> dict[str, Any]:
    """Log the children, the HTML drift report, the answers and the verdict; the result JSON."""
    import mlflow

    experiment_id = mlflow.get_run(run_id).info.experiment_id
    compared = {
        f"{side} ({c.ref})": c.facts.get("sha256") for side, c in zip("AB", contenders, strict=True)
    }
    compared["prompt set"] = f"{prompt_set.name} ({prompt_set.sha256[:12]})"
    title = f"{contenders[0].ref} vs {contenders[1].ref}: output drift of B against A"
    page = html_report.render(title, verdict, compared, {})
    mlflow.log_artifact(str(html_report.write(page, folder / html_report.REPORT_FILE)))
    child_ids = [_log_child(c, prompt_set, experiment_id) for c in contenders]
    answers = folder / "answers.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for c in contenders for r in c.records))
    mlflow.log_artifact(str(answers))
    models = [c.summary() | {"run_id": i} for c, i in zip(contenders, child_ids, strict=True)]
    result = {"run_id": run_id, "models": models, "drift": drift}
    mlflow.log_dict(result, "comparison.json")
    numeric = {k: float(v) for k, v in drift.items() if isinstance(v, (int, float))}
    mlflow.log_metrics({f"drift_{k}": v for k, v in numeric.items()})
    mlflow.set_tags({VERDICT: verdict.verdict, "drift.reason": verdict.reason[:5000]})
    return result


def execute(a: str, b: str, settings: CompareSettings) -> dict[str, Any]:
    """Serve and measure A then B, compare B's answers with A's, log it all to one MLflow run."""
    import mlflow

    from models.lifecycle.registry import Registry
    from prompts.sets import load_prompt_set

    prompt_set = load_prompt_set(settings.prompts).head(settings.limit)
    if settings.server_url is None:
        located = _local_contenders(a, b, settings)
        contenders = [c for c, _ in located]
    else:
        located, contenders = [], _remote_contenders(a, b, settings)
    mlflow.set_tracking_uri(settings.tracking_uri)
    experiment_id = Registry(settings.tracking_uri).experiment_id(COMPARE_EXPERIMENT)
    first, second = contenders
    tags = {
        KIND_TAG: COMPARE_KIND,
        A_SHA: str(first.facts.get("sha256")),
        B_SHA: str(second.facts.get("sha256")),
        "a": a,
        "b": b,
        "prompt_set": prompt_set.name,
        "prompt_set_sha256": prompt_set.sha256,
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{a} vs {b}", tags=tags) as run:
        params = settings.model_dump(exclude={"api_key", "tracking_uri", "server_url"})
        mlflow.log_params(
            {
                **params,
                "server": settings.server_url or "one per model",
                "prompt_count": len(prompt_set),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for contender, path in located:
                with _serve_one(contender, path, settings, folder) as url:
                    _measure(contender, url, settings, prompt_set)
            if settings.server_url is not None:
                for contender in contenders:
                    _measure(contender, settings.server_url, settings, prompt_set)
            drift, verdict = _drift(first, second, settings)
            result = _record(run.info.run_id, contenders, drift, verdict, prompt_set, folder)
    _table(contenders, drift, settings.levels)
    return result


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the compare arguments and flags."""
    parser.add_argument(
        "a", metavar="A", help="Baseline: catalog id, registered id, models:/ URI or path."
    )
    parser.add_argument("b", metavar="B", help="Candidate, compared against A.")
    add_settings_flags(parser, CompareSettings)


def run(args: argparse.Namespace) -> int:
    """Compare; the last stdout line is the JSON summary. Exit 0 whether or not drift is found."""
    from prompts.sets import PromptSetError

    for noisy in ("httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = execute(args.a, args.b, load_settings(CompareSettings, args))
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors()
        )
        print(f"myllama models compare: {problems}", file=sys.stderr)
        return 2
    except (EvalError, PromptSetError, ValueError, FileNotFoundError) as exc:
        print(f"myllama models compare: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    print(json.dumps(result, default=str), flush=True)
    return 0

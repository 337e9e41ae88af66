"""Drift runs read from MLflow (`myllama eval drift`): the list, a run's verdict, table, report."""

from __future__ import annotations

import html
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ui.errors import UserFacingError

REPORT_FILE = "drift_report.html"  # eval/report.py REPORT_FILE, as the runs name it
VERDICT_FILE = "verdict.json"
VERDICT_TAG = "drift.verdict"
KIND_TAG = "myllama.kind"
MAX_RUNS = 20
PART_COLUMNS = ["part", "name", "method", "statistic", "p_value", "p_adjusted", "drifted"]
PART_COLUMNS += ["n_reference", "n_current"]
BADGES = {
    "drift": "🔴 drift",
    "no_drift": "🟢 no drift",
    "insufficient_data": "⚪ insufficient data",
}


@dataclass(frozen=True)
class RunDetail:
    """One drift run: a verdict paragraph, the per-test table and the HTML report file, if any."""

    verdict: str
    parts: pd.DataFrame
    report: Path | None


def _client(tracking_uri: str) -> Any:
    """An MlflowClient on the store, or a readable error when a SQLite store does not exist."""
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise UserFacingError(
                f"No MLflow store at {tracking_uri} (looked for {path.resolve()}). Start the UI "
                "with --tracking-uri pointing at the store `myllama eval drift` writes to."
            )
    from mlflow import MlflowClient  # imported on first use: a second or two

    return MlflowClient(tracking_uri)


def recent_runs(tracking_uri: str, experiment: str, limit: int = MAX_RUNS) -> pd.DataFrame:
    """The newest drift runs, one row each (run_id last), or a readable error."""
    client = _client(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise UserFacingError(
            f"No drift runs yet: the store {tracking_uri} has no experiment {experiment!r}. "
            "Run `myllama eval drift --predictor iris` (or `--llm`) first."
        )
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{VERDICT_TAG}` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    rows = []
    for run in runs:
        tags = run.data.tags
        started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
        rows.append(
            {
                "started (UTC)": started.strftime("%Y-%m-%d %H:%M:%S"),
                "run": run.info.run_name or "",
                "kind": tags.get(KIND_TAG, ""),
                "of": tags.get("predictor") or run.data.params.get("model") or "",
                "verdict": BADGES.get(tags[VERDICT_TAG], tags[VERDICT_TAG]),
                "reason": tags.get("drift.reason", "")[:300],
                "run_id": run.info.run_id,
            }
        )
    return pd.DataFrame(
        rows, columns=["started (UTC)", "run", "kind", "of", "verdict", "reason", "run_id"]
    )


def _fmt(value: Any) -> Any:
    """A p-value or statistic to three significant figures; other values as they are."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def run_detail(tracking_uri: str, run_id: str) -> RunDetail:
    """The verdict, the per-test table from verdict.json and the report, downloaded from the run."""
    client = _client(tracking_uri)
    run = client.get_run(run_id)
    names = {a.path for a in client.list_artifacts(run_id)}
    folder = Path(tempfile.mkdtemp(prefix="myllama-drift-"))
    parts = pd.DataFrame(columns=PART_COLUMNS)
    skipped: dict[str, str] = {}
    if VERDICT_FILE in names:
        verdict = json.loads(
            Path(client.download_artifacts(run_id, VERDICT_FILE, str(folder))).read_text()
        )
        parts = pd.DataFrame(verdict.get("parts", []))
        parts = parts.reindex(columns=PART_COLUMNS).map(_fmt) if len(parts) else parts
        skipped = verdict.get("skipped", {})
    report = None
    if REPORT_FILE in names:
        report = Path(client.download_artifacts(run_id, REPORT_FILE, str(folder)))
    tags = run.data.tags
    text = (
        f"### {BADGES.get(tags.get(VERDICT_TAG, ''), tags.get(VERDICT_TAG, '?'))}\n"
        f"{tags.get('drift.reason', '')}\n\n"
        f"Run `{run_id}` ({run.info.run_name}) · kind `{tags.get(KIND_TAG, '?')}`"
    )
    if skipped:
        text += "\n\nNot tested: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
    if report is None:
        text += "\n\nThis run has no HTML report."
    return RunDetail(text, parts, report)


def embed(report: Path | None) -> str:
    """The report in a sandboxed iframe (its own page, its own styles), or nothing."""
    if report is None:
        return ""
    page = html.escape(report.read_text(encoding="utf-8"), quote=True)
    return (
        f'<iframe title="Drift report" sandbox srcdoc="{page}" '
        'style="width:100%;height:720px;border:1px solid #ccc;border-radius:8px"></iframe>'
    )

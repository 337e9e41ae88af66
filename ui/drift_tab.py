"""The Drift tab: the latest `myllama eval drift` runs from MLflow, one run's table and report."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ui import drift
from ui.errors import UserFacingError


class DriftTab:
    """Reads drift runs from one MLflow store and experiment."""

    def __init__(self, tracking_uri: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment

    def runs(self) -> tuple[pd.DataFrame | None, Any, str]:
        """The run table, the run picker (newest chosen) and a status line."""
        try:
            table = drift.recent_runs(self.tracking_uri, self.experiment)
        except UserFacingError as problem:
            return None, gr.Dropdown(choices=[], value=None), problem.message
        choices = [
            (f"{row['started (UTC)']} · {row['run']} · {row['verdict']}", row["run_id"])
            for _, row in table.iterrows()
        ]
        where = f"`{self.experiment}` at `{self.tracking_uri}`"
        status = f"{len(table)} most recent drift run(s) in {where}."
        if table.empty:
            status = f"No drift runs in `{self.experiment}` yet: run `myllama eval drift`."
        value = choices[0][1] if choices else None
        return table.drop(columns=["run_id"]), gr.Dropdown(choices=choices, value=value), status

    def detail(self, run_id: str | None) -> tuple[str, pd.DataFrame | None, str, Any]:
        """Verdict, per-test table, the embedded report and its download."""
        none = gr.DownloadButton(visible=False)
        if not run_id:
            return "", None, "", none
        try:
            found = drift.run_detail(self.tracking_uri, run_id)
        except UserFacingError as problem:
            return f"**Error:** {problem.message}", None, "", none
        except Exception as exc:  # a run deleted meanwhile, an unreadable artefact
            return f"**Error:** cannot read run {run_id}: {exc}", None, "", none
        button = (
            gr.DownloadButton(value=str(found.report), visible=True)
            if found.report is not None
            else none
        )
        return found.verdict, found.parts, drift.embed(found.report), button

    def build(self, tab: gr.Tab) -> None:
        """Lay out the tab; MLflow is read when the tab opens (not on page load: mlflow's import
        takes seconds) and on Refresh."""
        with gr.Row(equal_height=True):
            refresh = gr.Button("↻ Refresh drift runs", size="sm", scale=1, elem_id="drift-refresh")
            status = gr.Markdown(
                f"Store `{self.tracking_uri}`, experiment `{self.experiment}`.",
                elem_id="drift-status",
            )
        runs = gr.Dataframe(label="Latest drift runs", interactive=False, elem_id="drift-runs")
        pick = gr.Dropdown(label="Run", choices=[], elem_id="drift-run")
        verdict = gr.Markdown("", elem_id="drift-verdict")
        parts = gr.Dataframe(
            label="Tests (per feature / part)", interactive=False, elem_id="drift-parts"
        )
        download = gr.DownloadButton(
            "Download the HTML report", visible=False, elem_id="drift-report-file"
        )
        report = gr.HTML("", elem_id="drift-report")
        for trigger in (refresh.click, tab.select):
            trigger(self.runs, outputs=[runs, pick, status])
        pick.change(self.detail, inputs=pick, outputs=[verdict, parts, report, download])

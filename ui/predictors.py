"""Predictor forms built from the server's JSON Schema: label plus a probability bar chart."""

from __future__ import annotations

import re
from typing import Any

import gradio as gr
import pandas as pd

from ui import scoring
from ui.client import ServerClient
from ui.errors import UserFacingError

_TRAINED = re.compile(r"seen in training: (-?[\d.eE+-]+) to (-?[\d.eE+-]+)")


def start_value(schema: dict[str, Any]) -> Any:
    """Where a field starts: the schema's `default` (the training median or mode) when the server
    gives one; else, for a number, the middle of the training range its description names."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return None  # no mode known: the person chooses
    found = _TRAINED.search(str(schema.get("description", "")))
    if found is None:
        return None
    middle = (float(found.group(1)) + float(found.group(2))) / 2
    return round(middle) if schema.get("type") == "integer" else round(middle, 3)


def field_component(name: str, schema: dict[str, Any], elem_id: str) -> gr.Component:
    """One input for one schema property, as the server writes them (models/predictors/schema.py).

    A dropdown for an enum (strings, or a 0/1 integer); otherwise a number box for a number or an
    integer, captioned with the server's description (and, for a `nullable` feature, that it may
    be left empty). Each starts at `start_value`. No minimum/maximum on the box: the server
    checks ranges and names the field in its 422.
    """
    label = name.replace("_", " ").replace("-", " ")
    info = schema.get("description")
    if schema.get("nullable"):  # missing in training too: the server imputes an empty field
        info = "; ".join([*([info] if info else []), "may be left empty if unknown"])
    if "enum" in schema:
        # value=None (no mode known): nothing preselected, where Gradio would pick the first.
        return gr.Dropdown(
            choices=schema["enum"],
            value=start_value(schema),
            label=label,
            info=info,
            elem_id=elem_id,
            interactive=True,
        )
    return gr.Number(
        value=start_value(schema),
        label=label,
        info=info,
        precision=0 if schema["type"] == "integer" else None,
        elem_id=elem_id,
        interactive=True,  # with a start value the boxes came up read-only in the browser
    )


def chart_frame(probabilities: dict[str, float]) -> pd.DataFrame:
    """Class probabilities as rows for the bar chart, most likely first."""
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    return pd.DataFrame({"class": [k for k, _ in ranked], "probability": [v for _, v in ranked]})


def build_predictor(client: ServerClient, spec: dict[str, Any]) -> None:
    """The form, button, label and chart of one predictor, inside the current Blocks."""
    name = str(spec["name"])
    properties: dict[str, dict[str, Any]] = spec["input_schema"].get("properties", {})
    gr.Markdown(
        f"**{name}** version `{spec.get('version', '?')}` · "
        f"classes: {', '.join(map(str, spec.get('classes', [])))}"
    )
    with gr.Row():
        with gr.Column(scale=3), gr.Row():
            fields = [field_component(key, sch, f"{name}-{key}") for key, sch in properties.items()]
        with gr.Column(scale=2):
            button = gr.Button("Predict", variant="primary", elem_id=f"{name}-predict")
            label = gr.Markdown("", elem_id=f"{name}-label")
            chart = gr.BarPlot(
                None,  # an empty frame would fix the axis types before the first answer
                x="class",
                y="probability",
                y_lim=[0, 1],
                sort="-y",
                label="Class probabilities",
                elem_id=f"{name}-chart",
            )

    async def predict(*values: Any) -> tuple[str, pd.DataFrame | None]:
        """Send the form as one record; show the label and the probabilities."""
        record = dict(zip(properties, values, strict=True))
        try:
            result = await client.predict(name, record)
        except UserFacingError as problem:
            return f"**Error:** {problem.message}", None
        best = result.probabilities.get(result.label)
        confidence = f" ({best:.0%})" if best is not None else ""
        return f"### Predicted: {result.label}{confidence}", chart_frame(result.probabilities)

    button.click(predict, inputs=fields, outputs=[label, chart], concurrency_limit=None)


Catalog = tuple[list[dict[str, Any]], str | None]  # the server's predictor specs, or why none


def build_scoring(client: ServerClient, catalog: gr.State) -> None:
    """Upload a CSV, score every row with the chosen predictor, show the first rows, offer the
    scored file. Built once, outside the per-predictor gr.render: the same upload components
    rendered inside it left a form's Predict now and then waiting forever in the browser."""
    with gr.Accordion("Score a CSV file", open=True, elem_id="csv-panel"):
        about = gr.Markdown("", elem_id="csv-about")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown(label="Predictor", choices=[], scale=1, elem_id="csv-predictor")
            upload = gr.File(label="CSV file", file_types=[".csv"], scale=3, elem_id="csv-file")
        run = gr.Button("Score the file", elem_id="csv-score")
        summary = gr.Markdown("", elem_id="csv-status")
        preview = gr.Dataframe(
            label=f"First {scoring.PREVIEW_ROWS} rows", interactive=False, elem_id="csv-rows"
        )
        download = gr.DownloadButton(
            "Download the scored CSV", visible=False, elem_id="csv-download"
        )

    def spec_of(found: Catalog, name: str | None) -> dict[str, Any] | None:
        """The chosen predictor's spec."""
        return next((s for s in found[0] if s["name"] == name), None)

    def choices(found: Catalog) -> Any:
        """The predictors offered for scoring (the first chosen)."""
        names = [str(s["name"]) for s in found[0]]
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    def describe(found: Catalog, name: str | None) -> str:
        """What the chosen predictor's file must hold."""
        spec = spec_of(found, name)
        if spec is None:
            return "No predictor to score with."
        features = ", ".join(spec["input_schema"].get("properties", {}))
        return (
            f"A header naming every feature of **{name}** ({features}); other columns are kept. "
            f"Rows go to the server {scoring.BATCH_ROWS} at a time; a refused row gets its reason "
            "in the `error` column."
        )

    async def score_file(
        found: Catalog, name: str | None, path: str | None
    ) -> tuple[str, pd.DataFrame | None, Any]:
        """Read, score and write the file; a readable message instead of any failure."""
        hidden = gr.DownloadButton(visible=False)
        spec = spec_of(found, name)
        if spec is None or not path:
            return "Choose a predictor and a CSV file first.", None, hidden
        properties: dict[str, dict[str, Any]] = spec["input_schema"].get("properties", {})
        classes = [str(c) for c in spec.get("classes", [])]
        try:
            frame = scoring.read_csv(path, properties)
            scored = await scoring.score(client, str(name), frame, properties, classes)
        except UserFacingError as problem:
            return f"**Error:** {problem.message}", None, hidden
        written = scoring.write_scored(scored, str(name))
        shown = scored.frame.head(scoring.PREVIEW_ROWS).round(4)
        return scored.summary(), shown, gr.DownloadButton(value=str(written), visible=True)

    catalog.change(choices, inputs=catalog, outputs=pick)
    pick.change(describe, inputs=[catalog, pick], outputs=about)
    run.click(
        score_file,
        inputs=[catalog, pick, upload],
        outputs=[summary, preview, download],
        concurrency_limit=None,
    )


async def predictor_specs(client: ServerClient) -> tuple[list[dict[str, Any]], str | None]:
    """The server's predictors, or none and a readable reason."""
    try:
        specs = await client.predictors()
    except UserFacingError as problem:
        return [], f"**Error:** {problem.message}"
    if not specs:
        return [], "The server has no predictors loaded (train them with `myllama train all`)."
    return specs, None

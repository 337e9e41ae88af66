"""One self-contained HTML drift report: the verdict first, then every part with its plot."""

from __future__ import annotations

import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from eval import plots
from eval.verdict import DRIFT, NO_DRIFT, Part, Verdict

REPORT_FILE = "drift_report.html"
_COLOURS = {DRIFT: "#b3261e", NO_DRIFT: "#1e7b34"}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
.verdict { font-size: 2rem; font-weight: bold; padding: 1rem 1.5rem; border-radius: 8px;
           color: white; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
tr.drifted td { background: #fde8e6; }
section { border-top: 1px solid #ddd; margin-top: 1.5rem; padding-top: 0.5rem; }
svg { max-width: 100%; height: auto; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return html.escape(str(value))


def _details(details: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
        for k, v in details.items()
    )
    return f"<table class='details'>{rows}</table>" if rows else ""


def _part(part: Part, figure: Figure | None) -> str:
    state = "DRIFT" if part.drifted else "no drift"
    numbers = (
        f"<table><tr><th>test</th><td><code>{html.escape(part.method)}</code></td></tr>"
        f"<tr><th>statistic</th><td>{_number(part.statistic)}</td></tr>"
        f"<tr><th>p-value</th><td>{_number(part.p_value)}</td></tr>"
        f"<tr><th>p-value, Holm-adjusted</th><td>{_number(part.p_adjusted)}</td></tr>"
        f"<tr><th>threshold (adjusted p ≤)</th><td>{_number(part.threshold)}</td></tr>"
        f"<tr><th>n reference / n current</th><td>{part.n_reference} / {part.n_current}</td></tr>"
        "</table>"
    )
    plot = plots.svg(figure) if figure is not None else ""
    return (
        f"<section id='{html.escape(part.part)}-{html.escape(part.name)}'>"
        f"<h3>{html.escape(part.part)}: {html.escape(part.name)} — {state}</h3>"
        f"{plot}{numbers}{_details(part.details)}</section>"
    )


def _performance(summary: dict[str, Any] | None) -> str:
    """The concept-drift section: each metric, reference vs live, with its 95 % interval."""
    if not summary:
        return ""
    rows = ""
    for metric in ("accuracy", "brier", "roc_auc"):
        pair = summary.get(metric) or {}
        cells = ""
        for side in ("reference", "live"):
            value = pair.get(side)
            cells += (
                f"<td>{_number(value['value'])} [{_number(value['ci_low'])}, "
                f"{_number(value['ci_high'])}]</td>"
                if value
                else "<td>—</td>"
            )
        if pair:
            rows += f"<tr><th>{metric}</th>{cells}</tr>"
    reason = f"<p>{html.escape(summary['reason'])}</p>" if "reason" in summary else ""
    return (
        "<section id='performance'><h2>Performance (concept drift): "
        f"{html.escape(str(summary.get('verdict', '')))}</h2>{reason}"
        + (
            "<table><tr><th>metric</th><th>reference (held-out) [95 % CI]</th>"
            f"<th>live labelled window [95 % CI]</th></tr>{rows}</table>"
            if rows
            else ""
        )
        + "</section>"
    )


def render(
    title: str,
    verdict: Verdict,
    reference: dict[str, Any],
    figures: dict[str, Figure],
    performance: dict[str, Any] | None = None,
) -> str:
    """The page; `figures` maps "part:name" to its plot, `reference` says what was compared with."""
    colour = _COLOURS.get(verdict.verdict, "#8a6d00")
    summary = "".join(
        f"<tr class='{'drifted' if p.drifted else ''}'><td>{html.escape(p.part)}</td>"
        f"<td>{html.escape(p.name)}</td><td>{html.escape(p.method)}</td>"
        f"<td>{_number(p.statistic)}</td><td>{_number(p.p_value)}</td>"
        f"<td>{_number(p.p_adjusted)}</td><td>{p.n_reference} / {p.n_current}</td>"
        f"<td>{'drift' if p.drifted else ''}</td></tr>"
        for p in verdict.parts
    )
    skipped = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in verdict.skipped.items()
    )
    refs = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in reference.items()
    )
    sections = "".join(_part(p, figures.get(f"{p.part}:{p.name}")) for p in verdict.parts)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<div class="verdict" id="verdict" style="background:{colour}">Verdict: {verdict.verdict}</div>
<p id="reason">{html.escape(verdict.reason)}</p>
<h1>{html.escape(title)}</h1>
<p>Created {created}. Rule: every test's p-value is Holm-adjusted over all tests; a part drifts when
its adjusted p-value ≤ α = {verdict.alpha}.</p>
<h2>Compared with</h2><table>{refs}</table>
<h2>Sample sizes</h2>{_details(verdict.sample_sizes)}
<h2>All tests</h2>
<table><tr><th>part</th><th>name</th><th>test</th><th>statistic</th><th>p-value</th>
<th>adjusted</th><th>n ref / cur</th><th></th></tr>{summary}</table>
{f"<h2>Not tested</h2><ul>{skipped}</ul>" if skipped else ""}
{_performance(performance)}
<h2>Parts</h2>{sections}
</body></html>
"""


def write(page: str, path: Path) -> Path:
    """Write the page to `path` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path

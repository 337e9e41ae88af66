"""Score a CSV with a predictor: rows → records by the server's schema, batches, per-row errors."""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ui.client import ServerClient
from ui.errors import UserFacingError

BATCH_ROWS = 2048  # rows per POST /v1/predict/{name} (the server takes up to 10,000)
MAX_ROWS = 100_000
MAX_BAD_ROWS = 50  # after this many rejected rows the rest is left unscored
PREVIEW_ROWS = 20
ERROR_COLUMN = "error"
LABEL_COLUMN = "prediction"
_ROW_PARAM = re.compile(r"^inputs\[(\d+)\]\.?")


@dataclass
class Scored:
    """The input rows with prediction, probability and error columns, and a summary line."""

    frame: pd.DataFrame
    scored: int
    bad: dict[int, str]  # data row number (1-based) → why the server refused it
    unscored: int  # rows never sent because too many rows were bad

    def summary(self) -> str:
        """What happened, naming the first bad rows."""
        total = len(self.frame)
        text = f"Scored {self.scored} of {total} row(s)."
        if self.bad:
            first = [
                f"row {row} (line {row + 1}): {why}" for row, why in list(self.bad.items())[:5]
            ]
            more = f" and {len(self.bad) - 5} more" if len(self.bad) > 5 else ""
            text += f" {len(self.bad)} row(s) refused — " + "; ".join(first) + more + "."
        if self.unscored:
            text += (
                f" {self.unscored} row(s) not scored: more than {MAX_BAD_ROWS} bad rows; "
                "fix the file and score it again."
            )
        return text


def read_csv(path: str | Path, properties: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The CSV as a frame (category columns read as text), or a readable UserFacingError."""
    text_columns = {n: str for n, s in properties.items() if s.get("type") == "string"}
    try:
        frame = pd.read_csv(path, dtype=text_columns, skipinitialspace=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise UserFacingError(f"The file is not a readable CSV: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [n for n in properties if n not in frame.columns]
    if missing:
        raise UserFacingError(
            f"The CSV lacks the column(s) {', '.join(missing)}. "
            f"Its header must name every feature: {', '.join(properties)} (other columns are kept)."
        )
    if frame.empty:
        raise UserFacingError("The CSV has a header but no rows.")
    if len(frame) > MAX_ROWS:
        raise UserFacingError(f"The CSV has {len(frame)} rows; score at most {MAX_ROWS} at a time.")
    return frame


def _plain(value: Any) -> Any:
    """A cell as the plain JSON value the server expects (missing → null)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def to_records(frame: pd.DataFrame, properties: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per row with exactly the schema's features; text in a number column stays text.

    A number column holding one stray word is read by pandas as text: its numbers are turned
    back into numbers, and the word is sent as is, so the server names that row and field.
    """
    columns: dict[str, list[Any]] = {}
    for name, schema in properties.items():
        column = frame[name]
        if schema.get("type") != "string" and not pd.api.types.is_numeric_dtype(column):
            numbers = pd.to_numeric(column, errors="coerce")
            column = numbers.astype(object).where(numbers.notna() | column.isna(), column)
        columns[name] = [_plain(v) for v in column.tolist()]
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


async def score(
    client: ServerClient,
    name: str,
    frame: pd.DataFrame,
    properties: dict[str, dict[str, Any]],
    classes: list[str],
) -> Scored:
    """Post the rows in batches; a row the server refuses gets its reason, the others a label."""
    records = to_records(frame, properties)
    labels: list[str | None] = [None] * len(records)
    probabilities: list[dict[str, float]] = [{} for _ in records]
    bad: dict[int, str] = {}
    for start in range(0, len(records), BATCH_ROWS):
        pending = list(range(start, min(start + BATCH_ROWS, len(records))))
        while pending and len(bad) <= MAX_BAD_ROWS:
            try:
                answers = await client.predict_many(name, [records[i] for i in pending])
            except UserFacingError as problem:
                where = (
                    _ROW_PARAM.match(problem.param or "") if problem.status in (400, 422) else None
                )
                if where is None or int(where.group(1)) >= len(pending):
                    raise
                row = pending.pop(int(where.group(1)))
                bad[row + 1] = _ROW_PARAM.sub("", problem.detail or problem.message)
                continue
            for i, answer in zip(pending, answers, strict=True):
                labels[i], probabilities[i] = answer.label, answer.probabilities
            pending = []
    out = frame.copy()
    out[LABEL_COLUMN] = labels
    for label in classes:
        out[f"p_{label}"] = [p.get(str(label)) for p in probabilities]
    out[ERROR_COLUMN] = [
        bad.get(i + 1, "" if labels[i] is not None else "not scored") for i in range(len(records))
    ]
    scored = sum(label is not None for label in labels)
    return Scored(out, scored, bad, len(records) - scored - len(bad))


def write_scored(scored: Scored, name: str) -> Path:
    """The scored rows as a CSV in a fresh temporary folder (Gradio serves it for download)."""
    folder = Path(tempfile.mkdtemp(prefix="myllama-scored-"))
    path = folder / f"{name}-scored.csv"
    scored.frame.to_csv(path, index=False)
    return path

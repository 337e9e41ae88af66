"""True labels for served predictions: the `feedback` table next to the prediction log."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from models.errors import ModelError
from models.predictors.prediction_log import has_id_column

MAX_FEEDBACK = 1000  # ids per request

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    prediction_id TEXT PRIMARY KEY,
    predictor TEXT NOT NULL,
    label TEXT NOT NULL,
    ts TEXT NOT NULL
);
"""


class BadLabel(ModelError, ValueError):
    """A label that is not one of the predictor's classes; `param` names the field."""

    code = "invalid_value"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class UnknownIds(ModelError, LookupError):
    """Ids this predictor never served (or not yet written to the log)."""

    code = "prediction_not_found"
    param = "feedback"

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"unknown prediction ids: {', '.join(ids)}")
        self.ids = ids


class ConflictingLabels(ModelError, ValueError):
    """Ids that already have a different true label (labels are never overwritten)."""

    code = "label_conflict"
    param = "feedback"

    def __init__(self, ids: list[str]) -> None:
        super().__init__(
            f"these prediction ids already have a different label: {', '.join(ids)}; "
            "a true label is recorded once and never overwritten"
        )
        self.ids = ids


def record_feedback(
    path: Path, predictor: str, classes: list[str], items: list[tuple[str, str]]
) -> dict[str, int]:
    """Store (id, true label) pairs atomically: all or none; counts of stored and repeated ones."""
    for i, (_, label) in enumerate(items):
        if label not in classes:
            raise BadLabel(
                f"feedback[{i}].label {label!r} is not one of {predictor}'s classes {classes}",
                f"feedback[{i}].label",
            )
    wanted = dict(items)
    if len(wanted) < len(items):
        seen: dict[str, str] = {}
        for pred_id, label in items:
            if seen.setdefault(pred_id, label) != label:
                raise ConflictingLabels([pred_id])
    db = sqlite3.connect(path, timeout=5.0)
    try:
        with db:
            db.executescript(_SCHEMA)
            ids = list(wanted)
            marks = ",".join("?" * len(ids))
            known: set[str] = set()
            if has_id_column(db):
                known = {
                    r[0]
                    for r in db.execute(
                        f"SELECT prediction_id FROM predictions "
                        f"WHERE predictor = ? AND prediction_id IN ({marks})",
                        [predictor, *ids],
                    )
                }
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise UnknownIds(unknown)
            stored = dict(
                db.execute(
                    f"SELECT prediction_id, label FROM feedback WHERE prediction_id IN ({marks})",
                    ids,
                ).fetchall()
            )
            conflicts = [i for i in ids if i in stored and stored[i] != wanted[i]]
            if conflicts:
                raise ConflictingLabels(conflicts)
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            new = [(i, predictor, wanted[i], now) for i in ids if i not in stored]
            db.executemany("INSERT INTO feedback VALUES (?, ?, ?, ?)", new)
    finally:
        db.close()
    return {"stored": len(new), "unchanged": len(ids) - len(new)}


def read_labelled(path: Path | str, predictor: str, since: datetime | None = None) -> pd.DataFrame:
    """Predictions with feedback: "id", "ts", "label" (predicted), "probabilities", "truth"."""
    columns = ["id", "ts", "label", "probabilities", "truth"]
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        has_table = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'"
        ).fetchone()
        if not has_table or not has_id_column(db):
            return pd.DataFrame(columns=columns)
        query = (
            "SELECT p.prediction_id, p.ts, p.label, p.probabilities, f.label FROM predictions p "
            "JOIN feedback f ON f.prediction_id = p.prediction_id WHERE p.predictor = ?"
        )
        params = [predictor]
        if since is not None:
            query += " AND p.ts >= ?"
            moment = since if since.tzinfo else since.replace(tzinfo=UTC)
            params.append(moment.astimezone(UTC).isoformat(timespec="microseconds"))
        rows = db.execute(query + " ORDER BY p.id", params).fetchall()
    finally:
        db.close()
    return pd.DataFrame(rows, columns=columns)

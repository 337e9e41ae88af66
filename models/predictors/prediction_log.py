"""The prediction log: every served prediction in SQLite, written in batches by a thread."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    predictor TEXT NOT NULL,
    version TEXT NOT NULL,
    label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    inputs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_predictor_ts ON predictions (predictor, ts);
"""
_INSERT = (
    "INSERT INTO predictions (ts, predictor, version, label, probabilities, inputs) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_FIXED_COLUMNS = ["ts", "version", "label"]


@dataclass(frozen=True)
class _Entry:
    """One request's predictions, queued for the writer."""

    ts: str
    predictor: str
    version: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


def _timestamp(moment: datetime) -> str:
    """A UTC timestamp that sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class PredictionLog:
    """Appends predictions without blocking the caller; `close()` flushes everything queued.

    A failed batch (e.g. "database is locked") is retried with a doubling backoff; rows are
    dropped, with an error in the log, only after the last attempt. After `close()`, `record()`
    writes synchronously, so nothing is lost.
    """

    def __init__(
        self,
        path: Path,
        batch_size: int = 1000,
        lock_timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.lock_timeout = lock_timeout
        self.attempts = attempts
        self.backoff = backoff
        self._queue: queue.Queue[_Entry | None] = queue.Queue()
        self._closed = False
        self._state_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        db.close()
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    def record(
        self,
        predictor: str,
        version: str,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> None:
        """Queue one request's predictions (returns at once; written synchronously after close)."""
        entry = _Entry(_timestamp(datetime.now(UTC)), predictor, version, inputs, outputs)
        with self._state_lock:
            if not self._closed:
                self._queue.put(entry)
                return
        log.warning("prediction log %s is closed; writing %s synchronously", self.path, predictor)
        db = sqlite3.connect(self.path, timeout=self.lock_timeout)
        try:
            self._write(db, [entry])
        finally:
            db.close()

    def close(self) -> None:
        """Write everything still queued, then stop the writer."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _write_loop(self) -> None:
        db = sqlite3.connect(self.path, timeout=self.lock_timeout)
        try:
            running = True
            while running:
                entries = [self._queue.get()]
                while len(entries) < self.batch_size and not self._queue.empty():
                    entries.append(self._queue.get_nowait())
                if None in entries:
                    running = False
                self._write(db, [e for e in entries if e is not None])
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, entries: list[_Entry]) -> None:
        """Insert one batch, retrying any failure; never raises (the writer thread must live on)."""
        rows: list[tuple[str, ...]] = []
        for e in entries:
            try:
                rows += [
                    (
                        e.ts,
                        e.predictor,
                        e.version,
                        str(out["label"]),
                        json.dumps(out["probabilities"]),
                        json.dumps(record),
                    )
                    for record, out in zip(e.inputs, e.outputs, strict=True)
                ]
            except Exception:
                log.exception("DROPPED a %s request's %d predictions", e.predictor, len(e.inputs))
        if not rows:
            return
        for attempt in range(1, self.attempts + 1):
            try:
                with db:
                    db.executemany(_INSERT, rows)
                return
            except Exception as exc:
                if attempt == self.attempts:
                    log.error(
                        "DROPPED %d predictions: could not write them to %s after %d attempts",
                        len(rows),
                        self.path,
                        attempt,
                        exc_info=True,
                    )
                    return
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning(
                    "writing %d predictions to %s failed (%s); retry %d/%d in %.2fs",
                    len(rows),
                    self.path,
                    exc,
                    attempt,
                    self.attempts - 1,
                    delay,
                )
                time.sleep(delay)


def read_predictions(
    path: Path | str, predictor: str, since: datetime | None = None
) -> pd.DataFrame:
    """One row per served prediction: "ts" (UTC), "version", "label" and one column per feature."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _FIXED_COLUMNS})
    query = "SELECT ts, version, label, inputs FROM predictions WHERE predictor = ?"
    params: list[str] = [predictor]
    if since is not None:
        query += " AND ts >= ?"
        params.append(_timestamp(since if since.tzinfo else since.replace(tzinfo=UTC)))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(query + " ORDER BY id", params).fetchall()
    db.close()
    features = pd.DataFrame([json.loads(r[3]) for r in rows], index=range(len(rows)))
    fixed = pd.DataFrame(
        {
            "ts": pd.to_datetime([r[0] for r in rows], utc=True, format="ISO8601"),
            "version": [r[1] for r in rows],
            "label": [r[2] for r in rows],
        }
    )
    return pd.concat([fixed, features], axis=1)

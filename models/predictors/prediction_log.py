"""The prediction log: every served prediction in SQLite, written in batches by a thread."""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from models.errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_ROWS = 20_000
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_ENQUEUE_TIMEOUT = 1.0
DEFAULT_CLOSE_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    predictor TEXT NOT NULL,
    version TEXT NOT NULL,
    label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    inputs TEXT NOT NULL,
    prediction_id TEXT
);
CREATE INDEX IF NOT EXISTS predictions_predictor_ts ON predictions (predictor, ts);
"""
# The served id of each prediction (added after the first release): a new log gets the column in
# CREATE TABLE, an older log gets it once by ADD COLUMN (nullable: its old rows keep no id).
_ID_COLUMN = "prediction_id"
_ID_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS predictions_prediction_id ON predictions (prediction_id)"
)
_INSERT = (
    "INSERT INTO predictions (ts, predictor, version, label, probabilities, inputs, prediction_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_FIXED_COLUMNS = ["id", "ts", "version", "label"]


class PredictionLogFull(ModelError, RuntimeError):
    """The log has no room for a request's rows; retry after `retry_after` seconds."""

    code = "prediction_log_full"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after: int | None = retry_after


@dataclass(frozen=True)
class _Entry:
    """One request's predictions, queued for the writer."""

    ts: str
    predictor: str
    version: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    ids: list[str]
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        """How many rows this entry writes."""
        return len(self.inputs)


def _timestamp(moment: datetime) -> str:
    """A UTC timestamp that sorts as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _rows(entry: _Entry) -> list[tuple[str, ...]]:
    """An entry as table rows (raises on outputs or inputs that cannot be stored)."""
    return [
        (
            entry.ts,
            entry.predictor,
            entry.version,
            str(out["label"]),
            json.dumps(out["probabilities"]),
            json.dumps(record),
            pred_id,
        )
        for record, out, pred_id in zip(entry.inputs, entry.outputs, entry.ids, strict=True)
    ]


def has_id_column(db: sqlite3.Connection) -> bool:
    """Whether this log's predictions table stores the served ids."""
    return any(row[1] == _ID_COLUMN for row in db.execute("PRAGMA table_info(predictions)"))


def new_ids(count: int) -> list[str]:
    """Fresh prediction ids (random UUID4 hex: unguessable, unique across restarts)."""
    return [uuid.uuid4().hex for _ in range(count)]


class PredictionLog:
    """Appends predictions without blocking the caller (until the bound is reached).

    Guarantees (documented in the README, measured by benchmarks/predlog_kill_bench.py):

    - Bounded: at most `max_pending_rows` rows wait in memory (queued or being written). A request
      whose rows do not fit waits up to `enqueue_timeout` seconds for room, then `record()` raises
      `PredictionLogFull` (the server answers 503 with Retry-After): a row is either logged or its
      request was refused, never answered and silently dropped.
    - A kill loses little: the writer commits at least every `flush_interval` seconds while rows
      wait (at once when `batch_size` rows wait), in WAL mode with synchronous=NORMAL, so a
      committed row survives SIGKILL / an OOM kill of the process. A kill loses at most the rows
      answered in the last `flush_interval` seconds (plus the one commit in progress), and never
      more than `max_pending_rows`.
    - A write that fails (e.g. "database is locked") is retried with a doubling backoff (capped at
      `max_backoff`) for as long as the log is open; the rows keep their place in the bound.
    - `close()` flushes what waits, and returns within `close_timeout` seconds even if SQLite is
      stuck (what could not be written is counted in an error line). After `close()`, `record()`
      writes synchronously.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        enqueue_timeout: float = DEFAULT_ENQUEUE_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        batch_size: int = 1000,
        lock_timeout: float = 1.0,
        backoff: float = 0.05,
        max_backoff: float = 1.0,
    ) -> None:
        if max_pending_rows < 1 or flush_interval < 0 or enqueue_timeout < 0:
            raise ValueError("prediction log: max_pending_rows >= 1, intervals >= 0")
        self.path = Path(path)
        self.max_pending_rows = max_pending_rows
        self.flush_interval = flush_interval
        self.enqueue_timeout = enqueue_timeout
        self.close_timeout = close_timeout
        self.batch_size = batch_size
        self.lock_timeout = lock_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._has_rows = threading.Condition(self._lock)  # the writer waits on it
        self._has_room = threading.Condition(self._lock)  # callers of record() wait on it
        self._queue: deque[_Entry] = deque()
        self._queued_rows = 0
        self._pending_rows = 0  # queued + being written: what a kill would lose
        self._closing = False
        self._close_deadline = math.inf
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            if not has_id_column(db):
                db.execute(f"ALTER TABLE predictions ADD COLUMN {_ID_COLUMN} TEXT")
            db.execute(_ID_INDEX)
        db.close()
        self._thread = threading.Thread(target=self._write_loop, name="prediction-log", daemon=True)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        """Rows answered but not yet committed (what a kill now would lose)."""
        with self._lock:
            return self._pending_rows

    @property
    def retry_after(self) -> int:
        """Whole seconds a refused caller should wait: about one flush."""
        return max(1, math.ceil(self.flush_interval))

    def record(
        self,
        predictor: str,
        version: str,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> list[str]:
        """Queue one request's predictions, return their ids; PredictionLogFull if no room."""
        ids = new_ids(len(inputs))
        entry = _Entry(_timestamp(datetime.now(UTC)), predictor, version, inputs, outputs, ids)
        with self._lock:
            if not self._closing:
                fits = self._has_room.wait_for(
                    lambda: (
                        self._closing
                        or self._pending_rows == 0  # an oversized request still goes alone
                        or self._pending_rows + entry.rows <= self.max_pending_rows
                    ),
                    timeout=self.enqueue_timeout,
                )
                if not fits:
                    raise PredictionLogFull(
                        f"The prediction log is full ({self._pending_rows} rows waiting to be "
                        f"written, at most {self.max_pending_rows}); the prediction was not "
                        "served. Retry shortly.",
                        self.retry_after,
                    )
                if not self._closing:
                    self._queue.append(entry)
                    self._queued_rows += entry.rows
                    self._pending_rows += entry.rows
                    if len(self._queue) == 1 or self._queued_rows >= self.batch_size:
                        self._has_rows.notify()  # start the flush clock, or flush now
                    return ids
        log.warning("prediction log %s is closed; writing %s synchronously", self.path, predictor)
        db = sqlite3.connect(self.path, timeout=self.lock_timeout)
        try:
            with db:
                db.executemany(_INSERT, _rows(entry))
        finally:
            db.close()
        return ids

    def close(self, timeout: float | None = None) -> None:
        """Write what waits, stop the writer; back within `timeout` s (default close_timeout)."""
        timeout = self.close_timeout if timeout is None else timeout
        with self._lock:
            if not self._closing:
                self._closing = True
                self._close_deadline = time.monotonic() + timeout
                self._has_rows.notify_all()
                self._has_room.notify_all()
        self._thread.join(max(0.0, self._close_deadline - time.monotonic()))
        unwritten = self.pending_rows
        if unwritten:
            log.error(
                "prediction log %s: %d rows were not written within %.1f s of close and are LOST",
                self.path,
                unwritten,
                timeout,
            )

    def _next_batch(self) -> tuple[list[_Entry], bool]:
        """Entries to commit now (after waiting for a flush reason), and whether to stop after."""
        with self._lock:
            while not self._queue and not self._closing:
                self._has_rows.wait()
            while self._queue and not self._closing and self._queued_rows < self.batch_size:
                due = self._queue[0].queued_at + self.flush_interval - time.monotonic()
                if due <= 0:
                    break
                self._has_rows.wait(due)
            batch: list[_Entry] = []
            rows = 0
            while self._queue and (not batch or rows + self._queue[0].rows <= self.batch_size):
                entry = self._queue.popleft()
                batch.append(entry)
                rows += entry.rows
            self._queued_rows -= rows
            return batch, self._closing and not self._queue

    def _write_loop(self) -> None:
        db = sqlite3.connect(self.path, timeout=self.lock_timeout)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a process kill
        try:
            stop = False
            while not stop:
                batch, stop = self._next_batch()
                if batch and not self._commit(db, batch):
                    return  # closing and past the deadline: close() reports the loss
        finally:
            db.close()

    def _commit(self, db: sqlite3.Connection, entries: list[_Entry]) -> bool:
        """Insert one batch, retrying failures while open; False if close's deadline passed."""
        rows: list[tuple[str, ...]] = []
        for entry in entries:
            try:
                rows += _rows(entry)
            except Exception:  # a bug upstream, never a request's fault: say it loudly
                log.exception("DROPPED a %s request's %d predictions", entry.predictor, entry.rows)
        attempt = 0
        while rows:
            attempt += 1
            try:
                with db:
                    db.executemany(_INSERT, rows)
                break
            except Exception as exc:
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                if time.monotonic() + delay > self._close_deadline:
                    return False
                log.warning(
                    "writing %d predictions to %s failed (%s); retry %d in %.2fs",
                    len(rows),
                    self.path,
                    exc,
                    attempt,
                    delay,
                )
                time.sleep(delay)
        with self._lock:
            self._pending_rows -= sum(e.rows for e in entries)
            self._has_room.notify_all()
        return True


def read_predictions(
    path: Path | str, predictor: str, since: datetime | None = None
) -> pd.DataFrame:
    """One row per prediction: "id" (None before ids), "ts" (UTC), "version", "label", features."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _FIXED_COLUMNS})
    params: list[str] = [predictor]
    where = "predictor = ?"
    if since is not None:
        where += " AND ts >= ?"
        params.append(_timestamp(since if since.tzinfo else since.replace(tzinfo=UTC)))
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        id_column = _ID_COLUMN if has_id_column(db) else "NULL"  # a log from before the ids
        query = f"SELECT ts, version, label, inputs, {id_column} FROM predictions WHERE {where}"
        rows = db.execute(query + " ORDER BY id", params).fetchall()
    db.close()
    features = pd.DataFrame([json.loads(r[3]) for r in rows], index=range(len(rows)))
    fixed = pd.DataFrame(
        {
            "id": [r[4] for r in rows],
            "ts": pd.to_datetime([r[0] for r in rows], utc=True, format="ISO8601"),
            "version": [r[1] for r in rows],
            "label": [r[2] for r in rows],
        }
    )
    return pd.concat([fixed, features], axis=1)

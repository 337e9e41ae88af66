"""The completions log: what the server answered, one row per choice, in SQLite (opt-in).

It stores user text (the prompt and the answer): only turn it on where that is allowed.
Writes happen on one background thread in batches; `record()` never blocks the caller: when
`max_pending` entries already wait, the new one is dropped and counted (`dropped`), with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,                -- UTC ISO-8601 (sorts as text): when the request arrived
    request_id TEXT,
    choice_index INTEGER NOT NULL,
    endpoint TEXT NOT NULL,          -- chat.completions, completions, responses, messages
    model_id TEXT NOT NULL,
    gguf_sha256 TEXT,                -- SHA-256 of the GGUF file that answered
    prompt_hash TEXT NOT NULL,       -- SHA-256 of prompt_text
    prompt_text TEXT NOT NULL,       -- the prompt string, or the messages as canonical JSON
    sampling TEXT NOT NULL,          -- JSON: temperature, top_p, max_tokens, seed, ...
    answer TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    ttft_s REAL,                     -- request received → first token, seconds
    tpot_s REAL                      -- (end − first token) / (completion tokens − 1), seconds
);
CREATE INDEX IF NOT EXISTS completions_model_ts ON completions (model_id, ts);
CREATE INDEX IF NOT EXISTS completions_prompt ON completions (prompt_hash);
"""
_COLUMNS = (
    "ts",
    "request_id",
    "choice_index",
    "endpoint",
    "model_id",
    "gguf_sha256",
    "prompt_hash",
    "prompt_text",
    "sampling",
    "answer",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "ttft_s",
    "tpot_s",
)
_INSERT = (
    f"INSERT INTO completions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_STOP = object()


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else str(content)


def prompt_text(prompt: str | list[dict[str, Any]]) -> str:
    """The prompt as stored: a completion prompt as is; messages as [{role, content}] JSON."""
    if isinstance(prompt, str):
        return prompt
    messages = [{"role": str(m.get("role")), "content": _text(m.get("content"))} for m in prompt]
    return json.dumps(messages, ensure_ascii=False, separators=(",", ":"))


def prompt_hash(prompt: str | list[dict[str, Any]]) -> str:
    """SHA-256 of `prompt_text(prompt)`: the same prompt has the same hash in every log and run."""
    return hashlib.sha256(prompt_text(prompt).encode()).hexdigest()


@dataclass(frozen=True)
class CompletionEntry:
    """One choice of one answered request."""

    model_id: str
    prompt: str | list[dict[str, Any]]  # completion prompt, or chat messages (role, content)
    answer: str
    gguf_sha256: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    finish_reason: str | None = None
    choice_index: int = 0
    request_id: str | None = None
    endpoint: str = "chat.completions"
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> tuple[Any, ...]:
        """The SQLite row, in _COLUMNS order."""
        text = prompt_text(self.prompt)
        return (
            _timestamp(self.ts),
            self.request_id,
            self.choice_index,
            self.endpoint,
            self.model_id,
            self.gguf_sha256,
            hashlib.sha256(text.encode()).hexdigest(),
            text,
            json.dumps(self.sampling, sort_keys=True, default=str),
            self.answer,
            self.finish_reason,
            self.prompt_tokens,
            self.completion_tokens,
            self.ttft_s,
            self.tpot_s,
        )


def _timestamp(moment: datetime) -> str:
    """A UTC timestamp that sorts as text (naive times are taken as UTC)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class CompletionsLog:
    """Appends completions on a background thread; bounded, never blocks `record()`."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_pending: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        lock_timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 0.05,
    ) -> None:
        if max_pending < 1 or batch_size < 1 or attempts < 1:
            raise ValueError("completions log: max_pending, batch_size and attempts must be ≥ 1")
        self.path = Path(path)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.lock_timeout = lock_timeout
        self.attempts = attempts
        self.backoff = backoff
        self.dropped = 0  # entries refused because the queue was full, or failed every attempt
        self.written = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._closed = False
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=lock_timeout)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        finally:
            db.close()
        self._thread = threading.Thread(
            target=self._write_loop, name="completions-log", daemon=True
        )
        self._thread.start()

    def record(self, entry: CompletionEntry) -> bool:
        """Queue one choice; False (counted in `dropped`) when the log is full or closed."""
        with self._lock:
            if self._closed:
                self._drop("the log is closed")
                return False
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self._drop(f"{self._queue.maxsize} entries already wait")
                return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what waits and stop the writer (back within about `timeout` seconds)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.error("completions log %s: writer still busy after %.0f s", self.path, timeout)

    def _drop(self, why: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._last_warning > 10.0:
            self._last_warning = now
            log.warning(
                "completions log %s: entry dropped (%s); %d dropped so far",
                self.path,
                why,
                self.dropped,
            )

    def _write_loop(self) -> None:
        db = sqlite3.connect(self.path, timeout=self.lock_timeout)
        try:
            running = True
            while running:
                batch: list[CompletionEntry] = []
                item = self._queue.get()
                deadline = time.monotonic() + self.flush_interval
                while True:
                    if item is _STOP:
                        running = False
                        break
                    batch.append(item)
                    if len(batch) >= self.batch_size:
                        break
                    try:
                        item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                if batch:
                    self._write(db, batch)
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, batch: list[CompletionEntry]) -> None:
        """Insert one batch, retrying with a doubling backoff; never raises."""
        rows = []
        for entry in batch:
            try:
                rows.append(entry.row())
            except Exception:
                log.exception("completions log: an entry could not be stored and was dropped")
                self.dropped += 1
        for attempt in range(1, self.attempts + 1):
            try:
                with db:
                    db.executemany(_INSERT, rows)
                self.written += len(rows)
                return
            except sqlite3.Error as exc:
                if attempt == self.attempts:
                    self.dropped += len(rows)
                    log.error(
                        "completions log %s: %d entries dropped: %s", self.path, len(rows), exc
                    )
                    return
                time.sleep(self.backoff * 2 ** (attempt - 1))


def read_completions(
    path: Path | str, since: datetime | None = None, model: str | None = None
) -> pd.DataFrame:
    """The logged choices (oldest first), optionally from `since` on and of one model id."""
    query = f"SELECT {', '.join(_COLUMNS)} FROM completions WHERE 1 = 1"
    params: list[Any] = []
    if since is not None:
        query += " AND ts >= ?"
        params.append(_timestamp(since))
    if model is not None:
        query += " AND model_id = ?"
        params.append(model)
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = db.execute(query + " ORDER BY id", params).fetchall()
    finally:
        db.close()
    frame = pd.DataFrame(rows, columns=list(_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame

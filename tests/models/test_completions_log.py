"""The completions log: rows as written, one prompt hash everywhere, bounded, flushed on close."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.completions_log import CompletionEntry, CompletionsLog, prompt_hash, read_completions

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
]


def _entry(i: int, **extra: object) -> CompletionEntry:
    fields: dict = {
        "model_id": "smollm2-135m",
        "prompt": MESSAGES,
        "answer": f"Paris ({i})",
        "gguf_sha256": "ab" * 32,
        "sampling": {"temperature": 0.0, "max_tokens": 16},
        "prompt_tokens": 20,
        "completion_tokens": 3,
        "ttft_s": 0.05,
        "tpot_s": 0.01,
        "finish_reason": "stop",
        "choice_index": i % 2,
        "request_id": f"req-{i // 2}",
    }
    return CompletionEntry(**(fields | extra))


def test_every_field_is_stored_and_read_back(tmp_path: Path) -> None:
    """All fields land in SQLite; read_completions filters by time and model."""
    log = CompletionsLog(tmp_path / "c.db")
    early = datetime(2026, 1, 1, tzinfo=UTC)
    assert log.record(_entry(0, ts=early))
    assert log.record(_entry(1, model_id="other"))
    assert log.record(_entry(2, prompt="Once upon a time", endpoint="completions"))
    log.close()
    frame = read_completions(tmp_path / "c.db")
    assert len(frame) == 3 and log.written == 3 and log.dropped == 0
    first = frame.iloc[0]
    assert first["prompt_hash"] == prompt_hash(MESSAGES)
    assert json.loads(first["prompt_text"]) == MESSAGES
    assert json.loads(first["sampling"]) == {"max_tokens": 16, "temperature": 0.0}
    assert (first["answer"], first["gguf_sha256"], first["finish_reason"]) == (
        "Paris (0)",
        "ab" * 32,
        "stop",
    )
    assert (first["prompt_tokens"], first["completion_tokens"]) == (20, 3)
    assert (first["ttft_s"], first["tpot_s"]) == (0.05, 0.01)
    assert first["ts"] == early and frame.iloc[2]["prompt_text"] == "Once upon a time"
    assert len(read_completions(tmp_path / "c.db", since=early + timedelta(days=1))) == 2
    assert read_completions(tmp_path / "c.db", model="other")["answer"].tolist() == ["Paris (1)"]


def test_prompt_hash_ignores_extra_fields_and_content_parts() -> None:
    """Messages hash by role and text only: parts lists and extra keys give the same hash."""
    parts = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}], "name": None},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert prompt_hash(parts) == prompt_hash(MESSAGES)
    assert prompt_hash(MESSAGES) != prompt_hash(MESSAGES[1:])


def test_a_full_log_drops_instead_of_blocking(tmp_path: Path) -> None:
    """While SQLite is locked, at most max_pending entries wait; the rest are dropped at once."""
    path = tmp_path / "c.db"
    log = CompletionsLog(path, max_pending=5, batch_size=1, flush_interval=0.0, lock_timeout=0.05)
    blocker = sqlite3.connect(path)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer cannot commit until this ends
    accepted = [log.record(_entry(i)) for i in range(50)]
    assert accepted.count(False) >= 50 - 5 - 1 and log.dropped == accepted.count(False)
    blocker.rollback()
    blocker.close()
    log.close()
    assert (
        len(read_completions(path))
        == log.written
        == accepted.count(True) - (log.dropped - accepted.count(False))
    )


def test_close_flushes_and_a_closed_log_refuses(tmp_path: Path) -> None:
    """Entries recorded from many threads are all written by close(); then record() is False."""
    log = CompletionsLog(tmp_path / "c.db", flush_interval=5.0)
    threads = [
        threading.Thread(target=lambda k=k: [log.record(_entry(k * 100 + i)) for i in range(50)])
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(read_completions(tmp_path / "c.db")) == 200
    assert log.record(_entry(0)) is False and log.dropped == 1


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    """A zero bound is a ValueError."""
    with pytest.raises(ValueError, match="must be ≥ 1"):
        CompletionsLog(tmp_path / "c.db", max_pending=0)

"""The SQLite prediction log: concurrent writers, nothing lost on close, read back per predictor."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.predictors.prediction_log import PredictionLog, read_predictions

OUTPUT = {"label": "setosa", "probabilities": {"setosa": 0.9, "versicolor": 0.1}}


def test_every_record_is_written_by_close(tmp_path: Path) -> None:
    """4 threads × 250 requests of 2 records: 2,000 rows after close, in the right columns."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, batch_size=64)

    def client(worker: int) -> None:
        """One client thread's 250 requests."""
        for i in range(250):
            records = [{"x": float(i), "kind": f"w{worker}"}, {"x": -1.0, "kind": "other"}]
            log.record("iris", "7", records, [OUTPUT, OUTPUT])

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.record("churn", "1", [{"tenure": 3}], [{"label": "No", "probabilities": {"No": 1.0}}])
    log.close()
    frame = read_predictions(path, "iris")
    assert len(frame) == 2_000
    assert list(frame.columns) == ["ts", "version", "label", "x", "kind"]
    assert set(frame["version"]) == {"7"} and set(frame["label"]) == {"setosa"}
    assert (frame["kind"] == "other").sum() == 1_000
    assert str(frame["ts"].dt.tz) == "UTC"
    assert list(read_predictions(path, "churn")["tenure"]) == [3]


def test_since_filters_and_a_missing_file_reads_empty(tmp_path: Path) -> None:
    """`since` keeps only later rows; no file → an empty frame with the fixed columns."""
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    log.record("iris", "1", [{"x": 1.0}], [OUTPUT])
    log.close()
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert len(read_predictions(path, "iris", since=later - timedelta(hours=1))) == 1
    assert read_predictions(path, "iris", since=later).empty
    empty = read_predictions(tmp_path / "absent.db", "iris")
    assert empty.empty and list(empty.columns) == ["ts", "version", "label"]
    assert not (tmp_path / "absent.db").exists()


def test_rows_recorded_while_the_database_is_locked_still_land(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the write lock for 0.4 s: the batch is retried, not dropped."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, lock_timeout=0.02, attempts=8, backoff=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING, logger="models.predictors.prediction_log"):
        for i in range(20):
            log.record("iris", "1", [{"x": float(i)}], [OUTPUT])
        time.sleep(0.4)
        blocker.execute("COMMIT")
        blocker.close()
        log.close()
    assert list(read_predictions(path, "iris")["x"]) == [float(i) for i in range(20)]
    assert any("retry" in r.getMessage() for r in caplog.records)
    assert not any("DROPPED" in r.getMessage() for r in caplog.records)


def test_a_failing_batch_does_not_kill_the_writer(tmp_path: Path) -> None:
    """A batch that cannot be written is dropped (logged); later rows still land."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, attempts=1)
    log.record("iris", "1", [{"x": object()}], [OUTPUT])  # not JSON-serialisable
    log.close()
    assert read_predictions(path, "iris").empty
    log = PredictionLog(path)
    log.record("iris", "1", [{"x": 1.0}, {"x": 2.0}], [OUTPUT, {"label": "x"}])  # no probabilities
    log.record("iris", "1", [{"x": 3.0}], [OUTPUT])
    log.close()
    assert list(read_predictions(path, "iris")["x"]) == [3.0]


def test_record_after_close_is_written_synchronously(tmp_path: Path) -> None:
    """`record()` after `close()` is not lost: it lands before returning."""
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    log.close()
    log.record("iris", "2", [{"x": 5.0}], [OUTPUT])
    frame = read_predictions(path, "iris")
    assert list(frame["x"]) == [5.0] and list(frame["version"]) == ["2"]

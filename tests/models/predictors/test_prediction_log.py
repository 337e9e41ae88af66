"""The SQLite prediction log: bounded, flushed, closed in time; SIGKILL of the real server."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.predlog_kill_bench import traffic_then_kill
from models.predictors.datasets import feature_records, load_split
from models.predictors.prediction_log import PredictionLog, PredictionLogFull, read_predictions
from tests.conftest import API_KEY, Server
from tests.helpers import free_port, running_myllama
from tests.models.predictors.conftest import (
    Trained,
    error_of,
    predict,
    serving,
    wait_for_predictors,
)

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
    assert list(frame.columns) == ["id", "ts", "version", "label", "x", "kind"]
    assert frame["id"].notna().all() and frame["id"].is_unique
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
    assert empty.empty and list(empty.columns) == ["id", "ts", "version", "label"]
    assert not (tmp_path / "absent.db").exists()


def test_rows_recorded_while_the_database_is_locked_still_land(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection holds the write lock for 0.4 s: the batch is retried, not dropped."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, flush_interval=0.0, lock_timeout=0.02, backoff=0.05)
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


def test_an_unstorable_entry_does_not_kill_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry that cannot be stored (a bug upstream) is dropped loudly; the others land."""
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    with caplog.at_level(logging.ERROR, logger="models.predictors.prediction_log"):
        log.record("iris", "1", [{"x": object()}], [OUTPUT])  # not JSON-serialisable
        log.record("iris", "1", [{"x": 1.0}, {"x": 2.0}], [OUTPUT, {"label": "x"}])  # no probas
        log.record("iris", "1", [{"x": 3.0}], [OUTPUT])
        log.close()
    assert list(read_predictions(path, "iris")["x"]) == [3.0]
    assert sum("DROPPED" in r.getMessage() for r in caplog.records) == 2
    assert log.pending_rows == 0


def test_record_after_close_is_written_synchronously(tmp_path: Path) -> None:
    """`record()` after `close()` is not lost: it lands before returning."""
    path = tmp_path / "log.db"
    log = PredictionLog(path)
    log.close()
    log.record("iris", "2", [{"x": 5.0}], [OUTPUT])
    frame = read_predictions(path, "iris")
    assert list(frame["x"]) == [5.0] and list(frame["version"]) == ["2"]


def _rows_in(path: Path) -> int:
    """Rows committed to a prediction log, read by another connection."""
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        db.close()


def _wait_for_rows(path: Path, rows: int, timeout: float = 60.0) -> None:
    """Poll until the log holds `rows` committed rows."""
    deadline = time.monotonic() + timeout
    while _rows_in(path) < rows:
        assert time.monotonic() < deadline, f"{_rows_in(path)} of {rows} rows after {timeout}s"
        time.sleep(0.05)


def test_a_full_log_refuses_instead_of_dropping(tmp_path: Path) -> None:
    """SQLite locked: rows fill the bound, the next request is refused; what was taken lands."""
    path = tmp_path / "log.db"
    log = PredictionLog(
        path, max_pending_rows=10, enqueue_timeout=0.2, lock_timeout=0.02, max_backoff=0.05
    )
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(3):
        log.record("iris", "1", [{"x": float(i)}] * 3, [OUTPUT] * 3)
    with pytest.raises(PredictionLogFull, match="full") as refused:
        log.record("iris", "1", [{"x": 99.0}] * 2, [OUTPUT] * 2)
    assert refused.value.retry_after == 1
    log.record("iris", "1", [{"x": 3.0}], [OUTPUT])  # exactly fills the bound
    assert log.pending_rows == 10
    blocker.execute("COMMIT")
    blocker.close()
    log.close()
    assert sorted(read_predictions(path, "iris")["x"]) == [0.0] * 3 + [1.0] * 3 + [2.0] * 3 + [3.0]


def test_callers_wait_for_room_when_the_writer_keeps_up(tmp_path: Path) -> None:
    """A bound of 5 rows and 4 threads × 50 rows: back-pressure waits, nobody is refused."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, max_pending_rows=5, flush_interval=0.0, enqueue_timeout=60)
    refused: list[Exception] = []

    def client(worker: int) -> None:
        """One thread's 50 single-row requests."""
        for i in range(50):
            try:
                log.record("iris", "1", [{"x": float(worker * 100 + i)}], [OUTPUT])
            except PredictionLogFull as exc:
                refused.append(exc)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert refused == []
    assert len(read_predictions(path, "iris")) == 200


def test_an_oversized_request_goes_alone(tmp_path: Path) -> None:
    """A request larger than the whole bound is taken when nothing else waits."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, max_pending_rows=4)
    log.record("iris", "1", [{"x": 1.0}] * 9, [OUTPUT] * 9)
    log.close()
    assert len(read_predictions(path, "iris")) == 9


def test_rows_are_committed_without_close(tmp_path: Path) -> None:
    """The writer commits on its own: after the flush interval, and at once for a full batch."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, flush_interval=0.2)
    log.record("iris", "1", [{"x": 1.0}], [OUTPUT])
    _wait_for_rows(path, 1)
    batched = PredictionLog(tmp_path / "batched.db", flush_interval=3600, batch_size=5)
    batched.record("iris", "1", [{"x": 2.0}] * 5, [OUTPUT] * 5)
    _wait_for_rows(tmp_path / "batched.db", 5)
    assert log.pending_rows == 0 and batched.pending_rows == 0
    log.close()
    batched.close()


def test_close_gives_up_in_time_when_sqlite_is_stuck(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file stays locked: close() still returns, and says how many rows are lost."""
    path = tmp_path / "log.db"
    log = PredictionLog(path, flush_interval=0.0, lock_timeout=0.02, max_backoff=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    log.record("iris", "1", [{"x": 1.0}] * 5, [OUTPUT] * 5)
    with caplog.at_level(logging.ERROR, logger="models.predictors.prediction_log"):
        log.close(timeout=0.3)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert any("5 rows" in r.getMessage() and "LOST" in r.getMessage() for r in caplog.records)


def test_a_full_log_answers_503_with_retry_after(trained: Trained, tmp_path: Path) -> None:
    """The real server, its log locked: 20,000 rows fit, the next 10,000 get 503 + Retry-After."""
    log_file = tmp_path / "predictions.db"
    iris = feature_records(load_split("iris").train)
    batch = (iris * (10_000 // len(iris) + 1))[:10_000]
    with serving(f"sqlite:///{tmp_path}/absent.db", trained.predictors_dir, log_file) as server:
        wait_for_predictors(server)
        blocker = sqlite3.connect(log_file, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            for _ in range(2):
                assert predict(server, "iris", batch).status_code == 200
            refused = predict(server, "iris", batch)
            error = error_of(refused, 503)
            assert error["code"] == "prediction_log_full" and error["type"] == "server_error"
            assert refused.headers["Retry-After"] == "1"
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        _wait_for_rows(log_file, 20_000)  # the writer catches up once the lock is gone
        assert predict(server, "iris", batch[:10]).status_code == 200
    assert len(read_predictions(log_file, "iris")) == 20_010


def test_sigkill_mid_traffic_loses_only_the_last_flush_window(
    trained: Trained, tmp_path: Path
) -> None:
    """kill -9 during predictor traffic: every answer older than one flush window is in the log."""
    log_file = tmp_path / "predictions.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--api-key", API_KEY, "--parallel", "1"]
    args += ["--tracking-uri", f"sqlite:///{tmp_path}/absent.db"]
    args += ["--predictors-dir", str(trained.predictors_dir), "--prediction-log", str(log_file)]
    with running_myllama(args, f"{url}/health", log_name="predlog-kill") as process:
        wait_for_predictors(Server(url, API_KEY))
        result = traffic_then_kill(url, process, log_file, api_key=API_KEY, min_answers=300)
    assert process.returncode == -9
    assert result.answered >= 300 and result.logged > 0
    assert result.lost_outside_window == 0, result
    assert result.lost <= min(result.answered_in_window, result.max_pending_rows), result

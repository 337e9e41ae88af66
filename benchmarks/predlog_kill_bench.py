"""Prediction-log loss under SIGKILL: predictor traffic, kill -9 mid-stream, count the rows.

Starts a real `myllama serve` with a temp prediction log, sends single-record iris predictions
from several clients (each record carries a unique sepal_length, so every answer can be found in
the log), SIGKILLs the server mid-traffic and compares the 200 answers received with the rows in
the SQLite log. The documented bound (README, "Prediction log"): a kill loses at most the rows
answered in the last `flush_interval` seconds (1 s by default) and never more than the log's
`max_pending_rows`. `traffic_then_kill()` is the entry point other benchmarks call.

    .venv/bin/myllama train iris --predictors-dir /tmp/p --tracking-uri sqlite:////tmp/p/m.db
    .venv/bin/python benchmarks/predlog_kill_bench.py --predictors-dir /tmp/p --runs 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from models.predictors.prediction_log import (
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_PENDING_ROWS,
)

log = logging.getLogger("predlog_kill_bench")

ROOT = Path(__file__).resolve().parent.parent
FIRST_ID = 4.0  # sepal_length = FIRST_ID + n / ID_SCALE: inside iris's accepted range
ID_SCALE = 10_000
BASE = {"sepal_width": 3.0, "petal_length": 4.0, "petal_width": 1.2}


@dataclass(frozen=True)
class KillResult:
    """What one kill cost: answers received, rows logged, rows lost and the bound."""

    answered: int
    logged: int
    lost: int
    lost_outside_window: int  # lost rows answered before the last flush window: must be 0
    answered_in_window: int  # answers of the last flush_interval + grace before the kill
    window_s: float
    max_pending_rows: int
    traffic_s: float
    answers_per_s: float

    @property
    def within_bound(self) -> bool:
        """Loss no more than documented."""
        return self.lost_outside_window == 0 and self.lost <= self.max_pending_rows


def _record(n: int) -> dict[str, float]:
    """An iris record whose sepal_length encodes n."""
    return {"sepal_length": round(FIRST_ID + n / ID_SCALE, 4), **BASE}


def _logged_ids(db_path: Path) -> set[int]:
    """The ids of the iris rows in the log (opened as a reader would after the crash)."""
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT inputs FROM predictions WHERE predictor = 'iris'").fetchall()
    finally:
        db.close()
    return {round((json.loads(r[0])["sepal_length"] - FIRST_ID) * ID_SCALE) for r in rows}


def traffic_then_kill(
    url: str,
    process: subprocess.Popen[bytes],
    db_path: Path,
    *,
    api_key: str | None = None,
    clients: int = 4,
    min_answers: int = 300,
    min_seconds: float = 3.0,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    grace: float = 1.0,
    max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
) -> KillResult:
    """Predict from `clients` threads; SIGKILL `process` once both minimums are met; count."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    ids = itertools.count()
    id_lock = threading.Lock()
    answered: dict[int, float] = {}  # id -> when its 200 arrived (monotonic)
    enough = threading.Event()
    start = time.monotonic()

    def client() -> None:
        """Single-record predictions until the server is gone."""
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            while True:
                with id_lock:
                    n = next(ids)
                try:
                    response = http.post("/v1/predict/iris", json={"inputs": [_record(n)]})
                except httpx.HTTPError:
                    return  # the server was killed
                if response.status_code == 200:
                    answered[n] = time.monotonic()
                elif response.status_code != 503:
                    log.error("unexpected %d: %s", response.status_code, response.text[:200])
                if len(answered) >= min_answers and time.monotonic() - start >= min_seconds:
                    enough.set()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    enough.wait(timeout=600)
    killed_at = time.monotonic()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    for thread in threads:
        thread.join(timeout=60)
    logged = _logged_ids(db_path)
    lost = set(answered) - logged
    window = flush_interval + grace
    traffic = killed_at - start
    return KillResult(
        answered=len(answered),
        logged=len(logged),
        lost=len(lost),
        lost_outside_window=sum(1 for n in lost if answered[n] < killed_at - window),
        answered_in_window=sum(1 for t in answered.values() if t >= killed_at - window),
        window_s=window,
        max_pending_rows=max_pending_rows,
        traffic_s=round(traffic, 2),
        answers_per_s=round(len(answered) / traffic, 1),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_predictors(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until /v1/predictors answers 200 (the predictors are loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v1/predictors", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"predictors not loaded after {timeout} s")


def one_run(args: argparse.Namespace, work: Path) -> KillResult:
    """Start a server on a fresh log, traffic, SIGKILL, count."""
    port = _free_port()
    db_path = work / f"predictions-{port}.db"
    command = [sys.executable, "-m", "myllama", "serve", "--port", str(port)]
    command += ["--tracking-uri", args.tracking_uri, "--predictors-dir", args.predictors_dir]
    command += ["--prediction-log", str(db_path), "--parallel", "1"]
    with (work / f"server-{port}.log").open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_predictors(url, process, timeout=180)
            return traffic_then_kill(
                url,
                process,
                db_path,
                clients=args.clients,
                min_answers=args.min_answers,
                min_seconds=args.seconds,
            )
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def main() -> None:
    """Parse flags, run, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default="sqlite:///absent-mlflow.db")
    parser.add_argument("--predictors-dir", default="artifacts/predictors")
    parser.add_argument("--runs", type=int, default=3, help="Kills to measure.")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Traffic before the kill.")
    parser.add_argument("--min-answers", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: list[dict[str, Any]] = []
    print(
        f"{'run':>3} {'answered':>9} {'logged':>8} {'lost':>6} {'in window':>10} "
        f"{'lost before window':>19} {'answers/s':>10} {'lost (s)':>9} {'bound held':>11}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            r = one_run(args, Path(tmp))
            print(
                f"{run:>3} {r.answered:>9} {r.logged:>8} {r.lost:>6} {r.answered_in_window:>10} "
                f"{r.lost_outside_window:>19} {r.answers_per_s:>10} "
                f"{r.lost / r.answers_per_s:>9.2f} {r.within_bound!s:>11}"
            )
            results.append({**asdict(r), "within_bound": r.within_bound})
    summary = {
        "runs": results,
        "max_lost": max(r["lost"] for r in results),
        "flush_interval_s": DEFAULT_FLUSH_INTERVAL,
        "within_bound": all(r["within_bound"] for r in results),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

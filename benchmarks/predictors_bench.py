"""Predictor latency: single-record p50/p99 and a 1,000-record batch, server-side and over HTTP.

Server-side = the work one POST /v1/predict/{name} does after parsing JSON (validate the records,
build the frame, predict_proba, queue the log rows), timed in this process on the same champions
the server loads. With --url it also times the full HTTP round trip against a running server.

    .venv/bin/myllama train all
    .venv/bin/python benchmarks/predictors_bench.py [--url http://127.0.0.1:8000 --api-key KEY]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from eval.latency import percentiles
from models.predictors.datasets import feature_records, load_split
from models.predictors.prediction_log import PredictionLog
from models.predictors.registry import PREDICTOR_NAMES, Predictor, PredictorRegistry
from models.predictors.tracking import DEFAULT_TRACKING_URI


def _records(name: str, n: int) -> list[dict[str, Any]]:
    """n held-out rows (repeated if needed) as JSON-ready records."""
    rows = load_split(name).test.dropna()
    return feature_records(rows.sample(n, replace=len(rows) < n, random_state=0))


def _ms(times: list[float]) -> dict[str, float]:
    """mean and p50/p95/p99 of wall times, in milliseconds."""
    return {k: round(v, 3) for k, v in percentiles([t * 1000 for t in times], "ms").items()}


def _time(call: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each of `repeat` calls after 3 warm-up calls."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _bench_one(
    name: str,
    predictor: Predictor,
    log: PredictionLog,
    client: httpx.Client | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One predictor: single records and one batch, in process and (with a client) over HTTP."""
    singles = _records(name, args.repeat + 3)
    batch = _records(name, args.batch)

    def serve(records: list[dict[str, Any]]) -> None:
        clean = predictor.validate(records)
        log.record(name, predictor.version, clean, predictor.predict(clean))

    one = iter(singles)
    result: dict[str, Any] = {
        "source": predictor.source,
        "version": predictor.version,
        "server_single": _ms(_time(lambda: serve([next(one)]), args.repeat)),
        "server_batch_ms": round(min(_time(lambda: serve(batch), args.batch_repeat)) * 1000, 2),
    }
    if client is None:
        return result

    def post(records: list[dict[str, Any]]) -> None:
        client.post(f"/v1/predict/{name}", json={"inputs": records}).raise_for_status()

    one = iter(singles)
    result["http_single"] = _ms(_time(lambda: post([next(one)]), args.repeat))
    result["http_batch_ms"] = round(min(_time(lambda: post(batch), args.batch_repeat)) * 1000, 2)
    return result


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every loaded predictor, timed in process and (with --url) over HTTP."""
    registry = PredictorRegistry.load(args.tracking_uri, Path(args.predictors_dir))
    if not registry.predictors:
        raise SystemExit("no trained predictors: run `myllama train all` first")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    client = httpx.Client(base_url=args.url, headers=headers, timeout=30) if args.url else None
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(Path(tmp) / "bench.db")
        results = {
            name: _bench_one(name, predictor, log, client, args)
            for name, predictor in registry.predictors.items()
        }
        log.close()
    return results


def main() -> None:
    """Parse flags, run, print a table and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    parser.add_argument("--predictors-dir", default="artifacts/predictors")
    parser.add_argument("--url", help="A running server to time over HTTP as well.")
    parser.add_argument("--api-key")
    parser.add_argument("--repeat", type=int, default=500, help="Single-record calls.")
    parser.add_argument("--batch", type=int, default=1000, help="Records in the batch.")
    parser.add_argument("--batch-repeat", type=int, default=10, help="Batch calls (best kept).")
    args = parser.parse_args()
    results = bench(args)
    for name in PREDICTOR_NAMES:
        if name not in results:
            continue
        r = results[name]
        line = (
            f"{name:<7} server single p50 {r['server_single']['ms_p50']:7.2f} ms  "
            f"p99 {r['server_single']['ms_p99']:7.2f} ms  "
            f"batch of {args.batch} {r['server_batch_ms']:7.1f} ms"
        )
        if "http_single" in r:
            line += (
                f" | HTTP single p50 {r['http_single']['ms_p50']:7.2f} ms "
                f"p99 {r['http_single']['ms_p99']:7.2f} ms  batch {r['http_batch_ms']:7.1f} ms"
            )
        print(line)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Ray Serve path vs direct: the same threads in all, concurrency 1/8/16, and failover time.

Usage: .venv/bin/python benchmarks/ray_bench.py [--levels 1,8,16] [--max-tokens 64] [--threads 2]
Runs, one after the other on free loopback ports:
  direct      `myllama serve -t T --parallel 8`                      (one engine, T threads)
  ray 1xT     `myllama serve --ray --replicas 1 -t T --parallel 8`   (the same engine behind Ray)
  ray Nx1     `myllama serve --ray --replicas T -t 1 --parallel 8/T` (T replicas of one thread)
and prints aggregate output tok/s and TTFT p95 per level, the overhead of each Ray setup against
direct measured in the same run, then the failover time: SIGKILL one of the T replicas under
load, time until a new request is answered and until Ray has replaced the replica.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.serving_bench import sweep_level
from tests.helpers import free_port, running_myllama

log = logging.getLogger("ray_bench")


@contextmanager
def serving(flags: list[str], name: str) -> Iterator[str]:
    """A server with these flags on a free port (no predictors), until the block ends."""
    port = free_port()
    args = ["serve", "--port", str(port), "--no-load-predictors", "--n-ctx", "1024", *flags]
    url = f"http://127.0.0.1:{port}"
    with running_myllama(args, f"{url}/health/ready", log_name=f"ray-bench-{name}"):
        yield url


def sweep(url: str, levels: list[int], max_tokens: int) -> dict[int, dict[str, float]]:
    """tok/s and TTFT p95 at each level (2 x level streams, at least 4)."""
    found = {}
    for level in levels:
        figures = asyncio.run(sweep_level(url, level, max(2 * level, 4), max_tokens))
        found[level] = {
            "tok_s": figures["output_tok_per_s"],
            "ttft_p95_s": figures.get("ttft_s_p95", float("nan")),
            "completed": figures["completed"],
        }
        log.info("c=%d: %s", level, found[level])
    return found


def replica_samples(url: str, name: str) -> dict[str, dict[str, str | float]]:
    """{replica: its labels and value} of one per-replica metric."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        sample.labels["replica"]: {**sample.labels, "value": sample.value}
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def failover(url: str, streams: int = 8) -> dict[str, float | None]:
    """Kill one replica under `streams` long streams: seconds until answering and replaced."""
    stop = threading.Event()

    def load() -> None:
        body = {"prompt": "1, 2, 3, 4,", "max_tokens": 256, "stream": True}
        while not stop.is_set():
            try:
                with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=120) as r:
                    for _ in r.iter_lines():
                        pass
            except httpx.HTTPError:
                pass

    threads = [threading.Thread(target=load, daemon=True) for _ in range(streams)]
    for thread in threads:
        thread.start()
    while not all(s["value"] for s in replica_samples(url, "myllama_replica_running").values()):
        time.sleep(0.1)  # until every replica is decoding
    before = replica_samples(url, "myllama_replica_info")
    victim = sorted(before)[0]
    os.kill(int(before[victim]["pid"]), signal.SIGKILL)
    killed = time.monotonic()
    answered: float | None = None
    replaced: float | None = None
    while time.monotonic() - killed < 180 and (answered is None or replaced is None):
        if answered is None:
            body = {"prompt": "Hi", "max_tokens": 2}
            if httpx.post(f"{url}/v1/completions", json=body, timeout=60).status_code == 200:
                answered = time.monotonic() - killed
        now = replica_samples(url, "myllama_replica_info")
        if replaced is None and len(now) == len(before) and victim not in now:
            replaced = time.monotonic() - killed
        time.sleep(0.1)
    stop.set()
    return {"answering_again_s": answered, "replica_replaced_s": replaced}


def main() -> None:
    """Run the three setups and print the table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,16")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    t = args.threads
    setups = {
        "direct": ["-t", str(t), "--parallel", "8"],
        f"ray 1x{t}": ["--ray", "--replicas", "1", "-t", str(t), "--parallel", "8"],
        f"ray {t}x1": ["--ray", "--replicas", str(t), "-t", "1", "--parallel", str(8 // t)],
    }
    results: dict[str, dict[int, dict[str, float]]] = {}
    failed_over: dict[str, float | None] = {}
    for name, flags in setups.items():
        with serving(flags, name.replace(" ", "-")) as url:
            results[name] = sweep(url, levels, args.max_tokens)
            if name == f"ray {t}x1":
                failed_over = failover(url)
    print(
        f"\n{'setup':12}"
        + "".join(f"{'c=' + str(c) + ' tok/s':>14}{'TTFT p95':>10}" for c in levels)
    )
    for name, by_level in results.items():
        row = "".join(f"{f['tok_s']:14.1f}{f['ttft_p95_s']:10.3f}" for f in by_level.values())
        print(f"{name:12}{row}")
    for name in list(results)[1:]:
        ratios = [results[name][c]["tok_s"] / results["direct"][c]["tok_s"] for c in levels]
        print(
            f"{name} / direct tok/s: "
            + ", ".join(f"c={c}: {r:.2f}" for c, r in zip(levels, ratios, strict=True))
        )
    print("failover:", json.dumps(failed_over))
    print(json.dumps({"results": results, "failover": failed_over}))


if __name__ == "__main__":
    main()

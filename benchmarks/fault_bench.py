"""Fault and overload benchmark: load held, disconnect storm, grammar neighbours, in one run.

Usage: .venv/bin/python benchmarks/fault_bench.py [--duration 600] [--clients 64]

Starts `myllama serve --parallel 8 --max-queue 16` on loopback and runs three phases:
- overload: CLIENTS streaming clients for DURATION seconds; excess requests must get 429 with
  Retry-After (clients honour it), never a 5xx; /health/live is probed every 0.5 s throughout
  (p99); RSS is sampled (drift after warm-up); every admitted stream must end with [DONE];
- disconnect storm: 8 streams (every slot), half dropped after their first token; time until
  the metrics count them cancelled, against the measured time of one decode step;
- grammar neighbours: 4 free streams beside constrained requests (a json_object, two 256-value
  enums) against the same 4 beside free requests of similar length; time per output token of the
  free streams (median of 3 runs each), and the ratio.
Prints a table and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from eval.latency import percentiles
from tests.helpers import free_port, running_myllama

log = logging.getLogger("fault_bench")
HI = [{"role": "user", "content": "Write a short story about a lighthouse keeper."}]
ENUM_SCHEMA = {"enum": [f"option number {i}" for i in range(256)]}


@dataclass
class Tally:
    """What the overload clients saw."""

    statuses: dict[int, int] = field(default_factory=dict)
    missing_retry_after: int = 0
    admitted: int = 0
    completed: int = 0
    broken: int = 0
    live_ms: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)


async def stream_chat(
    http: httpx.AsyncClient, url: str, body: dict, drop_after_first: bool = False
) -> tuple[int, list[float], bool, str | None]:
    """Stream one chat: (status, token times, ended with [DONE], Retry-After header)."""
    started = time.perf_counter()
    times: list[float] = []
    async with http.stream(
        "POST", f"{url}/v1/chat/completions", json={**body, "stream": True}
    ) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, times, False, r.headers.get("retry-after")
        async for line in r.aiter_lines():
            if line == "data: [DONE]":
                return 200, times, True, None
            if line.startswith("data: ") and '"content"' in line and '"error"' not in line:
                times.append(time.perf_counter() - started)
                if drop_after_first:
                    return 200, times, False, None
    return 200, times, False, None


async def overload_client(http: httpx.AsyncClient, url: str, until: float, tally: Tally) -> None:
    """Send streams back to back until `until`, honouring Retry-After."""
    body = {"messages": HI, "max_tokens": 48, "temperature": 0.7}
    while time.monotonic() < until:
        status, _, done, retry_after = await stream_chat(http, url, body)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status == 200:
            tally.admitted += 1
            tally.completed += done
            tally.broken += not done
        elif status == 429:
            tally.missing_retry_after += retry_after is None
            await asyncio.sleep(float(retry_after or 1))


async def probe_liveness(http: httpx.AsyncClient, url: str, until: float, tally: Tally) -> None:
    """GET /health/live every 0.5 s; keep each latency."""
    while time.monotonic() < until:
        started = time.perf_counter()
        await http.get(f"{url}/health/live")
        tally.live_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.5)


async def sample_rss(pid: int, until: float, tally: Tally) -> None:
    """The server's resident memory every 5 s."""
    while time.monotonic() < until:
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        if match:
            tally.rss_mb.append(int(match.group(1)) / 1024)
        await asyncio.sleep(5)


async def overload(url: str, pid: int, clients: int, duration: float) -> dict:
    """Phase 1: more clients than slots plus queue, for `duration` seconds."""
    tally = Tally()
    until = time.monotonic() + duration
    limits = httpx.Limits(max_connections=clients + 8)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await asyncio.gather(
            *(overload_client(http, url, until, tally) for _ in range(clients)),
            probe_liveness(http, url, until, tally),
            sample_rss(pid, until, tally),
        )
    warm = tally.rss_mb[len(tally.rss_mb) // 10 :] or tally.rss_mb
    return {
        "duration_s": duration,
        "clients": clients,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "server_errors": sum(v for k, v in tally.statuses.items() if k >= 500),
        "429_without_retry_after": tally.missing_retry_after,
        "admitted": tally.admitted,
        "admitted_completed": tally.completed,
        "admitted_broken": tally.broken,
        **percentiles(tally.live_ms, "live_ms"),
        "rss_mb_first": round(warm[0], 1),
        "rss_mb_max": round(max(warm), 1),
        "rss_drift_pct": round(100 * (max(warm) - warm[0]) / warm[0], 1),
    }


async def cancelled(http: httpx.AsyncClient, url: str) -> float:
    """Requests ended as cancelled so far, summed over models, from /metrics."""
    text = (await http.get(f"{url}/metrics")).text
    pattern = r'^myllama_requests_finished_total\{.*reason="cancelled".*\} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.M))


async def disconnect_storm(url: str, streams: int = 8) -> dict:
    """Phase 2: every slot busy, half the clients drop mid-stream; how fast are slots freed?"""
    body = {"messages": HI, "max_tokens": 200, "temperature": 0.7}
    async with httpx.AsyncClient(timeout=600) as http:
        before = await cancelled(http, url)
        keep = [asyncio.create_task(stream_chat(http, url, body)) for _ in range(streams // 2)]
        drop = [stream_chat(http, url, body, drop_after_first=True) for _ in range(streams // 2)]
        dropped = await asyncio.gather(*drop)
        dropped_at = time.perf_counter()
        while await cancelled(http, url) < before + len(dropped):
            await asyncio.sleep(0.005)
        freed_ms = (time.perf_counter() - dropped_at) * 1000
        kept = await asyncio.gather(*keep)
    gaps = [b - a for _, t, _, _ in kept for a, b in itertools.pairwise(t)]
    step_ms = statistics.median(gaps) * 1000 if gaps else float("nan")
    return {
        "streams": streams,
        "dropped": sum(1 for s, *_ in dropped if s == 200),
        "slots_freed_ms": round(freed_ms, 1),
        "decode_step_ms": round(step_ms, 1),
        "freed_within_steps": round(freed_ms / step_ms, 2),
        "kept_completed": sum(1 for _, _, done, _ in kept if done),
    }


async def plain_tpot(url: str, neighbours: list[dict]) -> float:
    """Median time per output token of 4 plain streams, beside these constrained requests."""
    body = {"messages": HI, "max_tokens": 96, "temperature": 0}
    async with httpx.AsyncClient(timeout=600) as http:
        results = await asyncio.gather(
            *(stream_chat(http, url, body) for _ in range(4)),
            *(stream_chat(http, url, {**body, **extra}) for extra in neighbours),
        )
    tpots = [(t[-1] - t[0]) / (len(t) - 1) for _, t, _, _ in results[:4] if len(t) > 1]
    return statistics.median(tpots) * 1000


async def grammar_neighbours(url: str, repeats: int = 3) -> dict:
    """Phase 3: do constrained requests slow the free streams beside them, compared with free
    requests of the same length in their place (more sequences per batch cost time by themselves)?
    Each figure is the median of `repeats` runs."""
    json_object = {"response_format": {"type": "json_object"}}
    enum = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "choice", "schema": ENUM_SCHEMA},
        }
    }
    free = {"max_tokens": 16}  # about as long as the constrained answers

    async def median(neighbours: list[dict]) -> float:
        return statistics.median([await plain_tpot(url, neighbours) for _ in range(repeats)])

    await plain_tpot(url, [json_object, enum])  # warm-up, grammars cached
    one_free, one_object = await median([free]), await median([json_object])
    two_free, two_enums = await median([free, free]), await median([enum, enum])
    return {
        "beside_one_free_ms": round(one_free, 2),
        "beside_json_object_ms": round(one_object, 2),
        "beside_two_free_ms": round(two_free, 2),
        "beside_two_enum_schemas_ms": round(two_enums, 2),
        "slowdown_json_object_pct": round(100 * (one_object / one_free - 1), 1),
        "slowdown_enum_pct": round(100 * (two_enums / two_free - 1), 1),
    }


def table(results: dict) -> str:
    """The README table (rows of the phases that ran)."""
    rows = _overload_rows(results.get("overload"))
    rows += _disconnect_rows(results.get("disconnect"))
    rows += _grammar_rows(results.get("grammar"))
    lines = ["| phase | figure | value |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _overload_rows(o: dict | None) -> list[tuple[str, str, str]]:
    if o is None:
        return []
    return [
        ("overload", "clients / duration", f"{o['clients']} / {o['duration_s']:.0f} s"),
        ("overload", "answers by status", json.dumps(o["statuses"])),
        (
            "overload",
            "5xx / 429 without Retry-After",
            f"{o['server_errors']} / {o['429_without_retry_after']}",
        ),
        ("overload", "admitted streams completed", f"{o['admitted_completed']} of {o['admitted']}"),
        (
            "overload",
            "/health/live p50 / p99",
            f"{o['live_ms_p50']:.1f} / {o['live_ms_p99']:.1f} ms",
        ),
        (
            "overload",
            "RSS after warm-up: first / max",
            f"{o['rss_mb_first']} / {o['rss_mb_max']} MB ({o['rss_drift_pct']:+.1f} %)",
        ),
    ]


def _disconnect_rows(d: dict | None) -> list[tuple[str, str, str]]:
    if d is None:
        return []
    return [
        ("disconnect storm", "streams dropped", f"{d['dropped']} of {d['streams']}"),
        (
            "disconnect storm",
            "slots freed after",
            f"{d['slots_freed_ms']} ms = {d['freed_within_steps']} steps of "
            f"{d['decode_step_ms']} ms",
        ),
        (
            "disconnect storm",
            "kept streams completed",
            f"{d['kept_completed']} of {d['streams'] // 2}",
        ),
    ]


def _grammar_rows(g: dict | None) -> list[tuple[str, str, str]]:
    if g is None:
        return []
    return [
        (
            "grammar",
            "free TPOT beside a free request / a json_object one",
            f"{g['beside_one_free_ms']} / {g['beside_json_object_ms']} ms "
            f"({g['slowdown_json_object_pct']:+.1f} %)",
        ),
        (
            "grammar",
            "free TPOT beside two free requests / two 256-value enums",
            f"{g['beside_two_free_ms']} / {g['beside_two_enum_schemas_ms']} ms "
            f"({g['slowdown_enum_pct']:+.1f} %)",
        ),
    ]


def main() -> int:
    """Run the three phases against one server and print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="Overload seconds.")
    parser.add_argument("--clients", type=int, default=64, help="Overload clients.")
    parser.add_argument("--n-threads", type=int, default=2)
    parser.add_argument(
        "--phases", default="overload,disconnect,grammar", help="Comma-separated phases to run."
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [
        "serve", "--port", str(port), "--parallel", "8", "--max-queue", "16",
        "--n-ctx", "1024", "--n-threads", str(args.n_threads), "--no-load-predictors",
    ]  # fmt: skip
    phases = args.phases.split(",")
    results: dict[str, dict] = {}
    with running_myllama(serve, f"{url}/health/ready", log_name="fault-bench") as process:
        if "overload" in phases:
            log.info("overload: %d clients for %.0f s", args.clients, args.duration)
            results["overload"] = asyncio.run(
                overload(url, process.pid, args.clients, args.duration)
            )
        if "disconnect" in phases:
            log.info("disconnect storm")
            results["disconnect"] = asyncio.run(disconnect_storm(url))
        if "grammar" in phases:
            log.info("grammar neighbours")
            results["grammar"] = asyncio.run(grammar_neighbours(url))
    log.info("results\n%s", table(results))
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Serving benchmark: My LLAMA against llama-server, the llama-cpp-python example server and
llama_cpp.server, on the same GGUF, slots and threads, in one run.

Usage: .venv/bin/python benchmarks/serving_bench.py [--runs 3] [--systems myllama,llama-server,
    example-server,llama-cpp-server] [--sets general,copy-heavy] [--levels 1,8,16]
    [--copy-levels 1,8] [--parallel 16] [--n-threads N] [--max-tokens 128]
    [--myllama-args=--speculative] [--level-timeout 120]

Every run restarts each server; per system it measures idle RSS (after load, before traffic), the
general set (8 story prompts, max(2×clients, 4) requests per level), the copy-heavy set
(prompts/sets/heavy-copy.jsonl, each prompt twice per pass: a c=1 pass, then a c=8 pass), a
shared-prefix probe (TTFT of a request sharing an ~800-token system prompt with one still
generating in another slot) and peak RSS. Prints the machine and the MEDIAN over runs of every
figure as one table; raw figures go to test-artifacts/serving_bench.json; the last stdout line is
a JSON summary. llama-server and the example server come from `make llama-server` (skipped when
missing). With --speculation: ours with --no-speculative and --speculative on both sets; with
--engine-speculation: the same on the in-process engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from peers import LABELS, SYSTEMS, Running, Settings, machine, missing, running

from eval.latency import RequestRecord, summarise
from eval.local_server import rss_mb
from models.catalog import DEFAULT_MODEL

log = logging.getLogger("serving_bench")

TOPICS = [
    "a dragon who learns to cook",
    "a lighthouse keeper",
    "a robot gardener",
    "two rival chess players",
    "a city under the sea",
    "a lost violin",
    "a train that never stops",
    "a cat who runs a bakery",
]
SYSTEM = "You are a careful assistant for a shipping company. " + " ".join(
    f"Rule {i}: answer politely, cite the handbook section {i}, and never guess." for i in range(48)
)
SETS = ("general", "copy-heavy")

Messages = list[dict[str, str]]
Figures = dict[str, float]


def story(i: int) -> Messages:
    """A prompt that asks for a long answer."""
    return [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]


def prompt_set(name: str) -> list[Messages]:
    """The general chat prompts (one story per topic) or the copy-heavy set."""
    if name == "general":
        return [story(i) for i in range(len(TOPICS))]
    from prompts.sets import load_prompt_set

    return [list(p.messages) for p in load_prompt_set("heavy-copy").prompts]


async def one_request(
    http: httpx.AsyncClient,
    url: str,
    record: RequestRecord,
    messages: Messages,
    max_tokens: int,
    first_token: asyncio.Event | None = None,
) -> RequestRecord:
    """Stream one chat completion into `record`, timing every token (left partial if cancelled)."""
    body = {
        "model": DEFAULT_MODEL.id,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started, done = time.perf_counter(), False
    try:
        async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                record.error = f"HTTP {response.status_code}"
                return record
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                event = json.loads(data)
                for choice in event.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        now = time.perf_counter() - started
                        record.ttft = now if record.ttft is None else record.ttft
                        record.token_times.append(now)
                        if first_token is not None:
                            first_token.set()
                    record.finish_reason = choice.get("finish_reason") or record.finish_reason
                if event.get("usage"):
                    record.output_tokens = event["usage"].get("completion_tokens")
                    record.prompt_tokens = event["usage"].get("prompt_tokens")
    except httpx.HTTPError as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    finally:
        if first_token is not None:
            first_token.set()
    if not done or record.finish_reason not in ("stop", "length"):
        record.error = "stream ended early"
        return record
    record.e2e = time.perf_counter() - started
    record.output_tokens = record.output_tokens or len(record.token_times)
    return record


async def sweep_level(
    url: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    prompts: list[Messages],
    level_timeout: float = 600.0,
) -> Figures:
    """Run `requests` streams with `concurrency` in flight, cut off after `level_timeout` s."""
    gate = asyncio.Semaphore(concurrency)
    records = [RequestRecord(prompt_id=str(i)) for i in range(requests)]

    async def gated(http: httpx.AsyncClient, i: int) -> None:
        async with gate:
            await one_request(http, url, records[i], prompts[i % len(prompts)], max_tokens)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=level_timeout, limits=limits) as http:
        warm = RequestRecord(prompt_id="warm-up")
        await asyncio.wait_for(one_request(http, url, warm, story(99), 8), level_timeout)
        started = time.perf_counter()
        tasks = [asyncio.create_task(gated(http, i)) for i in range(requests)]
        _, pending = await asyncio.wait(tasks, timeout=level_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - started
    for record in records:
        if not record.ok and record.error is None:
            record.error = f"not complete after {level_timeout:.0f} s"
    figures = summarise(records, wall)
    figures["completed"] = float(sum(r.ok for r in records))
    # aggregate throughput counts every token streamed, also those of streams cut short
    received = sum(r.output_tokens or 0 if r.ok else len(r.token_times) for r in records)
    figures["output_tok_per_s"] = received / wall
    return figures


async def shared_prefix_probe(
    url: str, tag: str, pairs: int = 6, timeout: float = 120.0
) -> Figures:
    """TTFT of B, sharing A's ~800-token system prompt while A (128 tokens) still generates."""
    ttfts, prompt_tokens = [], []
    async with httpx.AsyncClient(timeout=timeout) as http:
        for k in range(pairs):
            first = asyncio.Event()
            a_messages = [{"role": "system", "content": SYSTEM}, *story(k)]
            b_messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Question {tag}-{k}: where is parcel {k * 7919}?"},
            ]
            a_record, b_record = RequestRecord(prompt_id="A"), RequestRecord(prompt_id="B")
            a = asyncio.create_task(one_request(http, url, a_record, a_messages, 128, first))
            await asyncio.wait_for(first.wait(), timeout)
            await one_request(http, url, b_record, b_messages, 8)
            await asyncio.wait_for(a, timeout)
            if k and b_record.ttft is not None:  # the first pair warms up
                ttfts.append(b_record.ttft)
                prompt_tokens.append(b_record.prompt_tokens or 0)
    return {
        "ttft_s_p50": statistics.median(ttfts) if ttfts else float("nan"),
        "pairs": float(len(ttfts)),
        "prompt_tokens": float(statistics.median(prompt_tokens)) if prompt_tokens else 0.0,
    }


def sweep(server: Running, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """Both prompt sets at their levels, then the shared-prefix probe, against one server."""
    results: dict[str, Any] = {"rss_idle_mib": rss_mb(server.process.pid)[0]}
    for name in args.sets:
        prompts = prompt_set(name)
        levels = args.levels if name == "general" else args.copy_levels
        results[name] = {}
        for level in levels:
            requests = max(2 * level, 4) if name == "general" else 2 * len(prompts)
            figures = asyncio.run(
                sweep_level(server.url, level, requests, args.max_tokens, prompts, args.timeout)
            )
            log.info(
                "%s %s c=%d: %.1f tok/s, %d/%d complete",
                tag,
                name,
                level,
                figures["output_tok_per_s"],
                figures["completed"],
                requests,
            )
            results[name][str(level)] = figures
    if not args.no_probe:
        results["shared_prefix"] = asyncio.run(shared_prefix_probe(server.url, tag))
        log.info("%s shared prefix: %s", tag, results["shared_prefix"])
    results["rss_after_mib"], results["rss_peak_mib"] = rss_mb(server.process.pid)
    return results


def median_of(runs: list[Any]) -> Any:
    """The median, key by key, of nested dicts of figures."""
    if isinstance(runs[0], dict):
        return {k: median_of([r[k] for r in runs if k in r]) for k in runs[0]}
    return statistics.median(runs)


def table(medians: dict[str, Any], skipped: dict[str, str], runs: int) -> str:
    """One Markdown table: tok/s, ×llama-server, TTFT and streams per system, set and level."""
    rows = [
        "| system | prompt set | clients | tok/s | ×llama-server | TTFT p50 | TTFT p95 "
        "| complete |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = medians.get("llama-server", {})
    for system in SYSTEMS:
        if system in skipped:
            rows.append(f"| {LABELS[system]} | {skipped[system]} | | | | | | |")
            continue
        if system not in medians:
            continue
        for name in SETS:
            for level, f in medians[system].get(name, {}).items():
                ref = base.get(name, {}).get(level, {}).get("output_tok_per_s")
                ratio = f"{f['output_tok_per_s'] / ref:.2f}" if ref else "–"
                rows.append(
                    f"| {LABELS[system]} | {name} | {level} | {f['output_tok_per_s']:.1f} "
                    f"| {ratio} | {seconds(f.get('ttft_s_p50'))} | {seconds(f.get('ttft_s_p95'))} "
                    f"| {f['completed']:.0f}/{f['requests']:.0f} |"
                )
    rows += ["", "| system | RSS idle | RSS peak | shared-prefix TTFT p50 (other slot) |"]
    rows.append("|---|---|---|---|")
    for system, m in medians.items():
        probe = m.get("shared_prefix", {})
        rows.append(
            f"| {LABELS[system]} | {m['rss_idle_mib']:.0f} MiB | {m['rss_peak_mib']:.0f} MiB "
            f"| {seconds(probe.get('ttft_s_p50'))} ({probe.get('prompt_tokens', 0):.0f} "
            "prompt tokens) |"
        )
    rows.append(f"\nmedian of {runs} run(s), each on a freshly started server")
    return "\n".join(rows)


def seconds(value: float | None) -> str:
    """A duration for the table: ms below a second."""
    if value is None or value != value:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def summary(medians: dict[str, Any]) -> dict[str, Any]:
    """The one-line JSON summary: our ratios vs llama-server, TTFT p95 c=16, idle RSS, probe."""
    ours, base = medians.get("myllama", {}), medians.get("llama-server", {})
    example = medians.get("example-server", {})
    ratios = {
        name: {
            level: round(f["output_tok_per_s"] / base[name][level]["output_tok_per_s"], 3)
            for level, f in ours.get(name, {}).items()
            if base.get(name, {}).get(level, {}).get("output_tok_per_s")
        }
        for name in SETS
        if name in ours
    }

    def p95_c16(m: dict[str, Any]) -> float | None:
        return m.get("general", {}).get("16", {}).get("ttft_s_p95")

    return {
        "x_llama_server": ratios,
        "ttft_p95_c16_s": {"myllama": p95_c16(ours), "example-server": p95_c16(example)},
        "rss_idle_mib_myllama": ours.get("rss_idle_mib"),
        "shared_prefix_ttft_s_myllama": ours.get("shared_prefix", {}).get("ttft_s_p50"),
    }


def compare(args: argparse.Namespace) -> int:
    """The default mode: every chosen system, every set and level, `--runs` times."""
    settings = Settings(DEFAULT_MODEL.gguf_path(), args.parallel, args.n_threads, args.myllama_args)
    start = machine()
    skipped = {s: why for s in args.systems if (why := missing(s))}
    for system, why in skipped.items():
        log.warning("skipping %s: %s", LABELS[system], why)
    raw: dict[str, list[dict[str, Any]]] = {}
    commands: dict[str, list[str]] = {}
    for system in (s for s in args.systems if s not in skipped):
        for run in range(args.runs):
            with running(system, settings) as server:
                commands[system] = server.command
                log.info("%s run %d/%d: %s", system, run + 1, args.runs, " ".join(server.command))
                raw.setdefault(system, []).append(sweep(server, args, f"{system}#{run + 1}"))
    medians = {system: median_of(results) for system, results in raw.items()}
    end = machine()
    out = {"machine": start, "load_average_end": end["load_average"], "commands": commands}
    out |= {"skipped": skipped, "runs": raw, "medians": medians, "settings": vars(args) | {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    sys.stdout.write(
        f"{start['cpu']}, {start['cores']} cores; load average {start['load_average']} at start, "
        f"{end['load_average']} at end; {start['date']}\n"
        f"{DEFAULT_MODEL.gguf_path().name}, {args.parallel} slots, {args.n_threads} threads, "
        f"{args.max_tokens} max tokens, temperature 0, streaming\n"
    )
    for system, command in commands.items():
        sys.stdout.write(f"{LABELS[system]}: {' '.join(command)}\n")
    sys.stdout.write(table(medians, skipped, args.runs) + "\n")
    sys.stdout.write(json.dumps(summary(medians)) + "\n")
    return 0


def scrape(url: str, name: str) -> float:
    """Sum of a counter's samples on the server's /metrics (NaN when not exported)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
        if sample.name in (name, f"{name}_total")
    ]
    return sum(values) if values else float("nan")


def speculation_sweep(url: str, max_tokens: int) -> dict[str, dict[int, Figures]]:
    """General chat and copy-heavy prompts at 1 and 8 clients against one running server."""
    results: dict[str, dict[int, Figures]] = {}
    for set_name in SETS:
        prompts = prompt_set(set_name)
        results[set_name] = {}
        for level in (1, 8):
            requests = 2 * len(prompts) if set_name == "copy-heavy" else max(2 * level, 4)
            drafted, accepted = (
                scrape(url, "myllama_draft_tokens"),
                scrape(url, "myllama_draft_tokens_accepted"),
            )
            figures = asyncio.run(sweep_level(url, level, requests, max_tokens, prompts))
            figures["drafted"] = scrape(url, "myllama_draft_tokens") - drafted
            figures["accepted"] = scrape(url, "myllama_draft_tokens_accepted") - accepted
            log.info("%s c=%d: %.1f tok/s", set_name, level, figures["output_tok_per_s"])
            results[set_name][level] = figures
    return results


def speculation_table(runs: dict[str, dict[str, dict[int, dict]]]) -> str:
    """With and without speculation, per prompt set and concurrency, as a Markdown table."""
    rows = [
        "| prompt set | speculative | clients | tok/s | ×without | TTFT p50 | TTFT p95 | complete "
        "| drafts accepted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = runs["off"]
    for mode, results in runs.items():
        for set_name, levels in results.items():
            for level, f in levels.items():
                ratio = f["output_tok_per_s"] / max(base[set_name][level]["output_tok_per_s"], 1e-9)
                share = f["accepted"] / f["drafted"] if f.get("drafted") else float("nan")
                rows.append(
                    f"| {set_name} | {mode} | {level} | {f['output_tok_per_s']:.1f} | {ratio:.2f} "
                    f"| {f.get('ttft_s_p50', 0):.3f} | {f.get('ttft_s_p95', 0):.3f} "
                    f"| {int(f['completed'])}/{int(f['requests'])} "
                    f"| {f.get('accepted', 0):.0f}/{f.get('drafted', 0):.0f} ({share:.0%}) |"
                )
    return "\n".join(rows)


def run_speculation(args: argparse.Namespace) -> int:
    """My LLAMA without, then with, speculative decoding on both prompt sets."""
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    for mode, flag in (("off", "--no-speculative"), ("on", "--speculative")):
        extra = f"{args.myllama_args} {flag}"
        settings = Settings(DEFAULT_MODEL.gguf_path(), args.parallel, args.n_threads, extra)
        with running("myllama", settings) as server:
            runs[mode] = speculation_sweep(server.url, args.max_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1))
    sys.stdout.write(
        f"myllama serve --parallel {args.parallel}, without and with --speculative; "
        f"{args.max_tokens} output tokens per request, temperature 0; general: 8 story prompts "
        "(c=1: 4 requests, c=8: 16); copy-heavy: 8 prompts of 370-620 tokens, each sent twice "
        "per pass (c=1 pass, then c=8 pass)\n"
    )
    sys.stdout.write(speculation_table(runs) + "\n")
    return 0


def engine_speculation(args: argparse.Namespace) -> int:
    """In-process engine, without and with speculation: tok/s per prompt set at 1 and 8 streams."""
    from models.engine import EngineConfig, GenerationParams
    from models.engine.llama_engine import LlamaEngine

    async def level(engine: LlamaEngine, prompts: list[list[int]], clients: int) -> float:
        gate = asyncio.Semaphore(clients)
        params = GenerationParams(max_tokens=args.max_tokens, temperature=0)

        async def one(prompt: list[int]) -> int:
            async with gate:
                [stream] = await engine.submit(prompt, params)
                async for event in stream:
                    if not hasattr(event, "text"):
                        return int(event.completion_tokens)
            return 0

        started = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(p) for p in prompts)))
        return tokens / (time.perf_counter() - started)

    rows = ["| prompt set | clients | tok/s without | tok/s with | ×without | accepted/drafted |"]
    rows.append("|---|---|---|---|---|---|")
    sets = {"general": prompt_set("general"), "heavy-copy": prompt_set("copy-heavy")}
    figures: dict[tuple[str, int, bool], tuple[float, int, int]] = {}
    for speculative in (False, True):
        config = EngineConfig(
            parallel=args.parallel, max_queue=256, n_threads=args.n_threads, speculative=speculative
        )
        engine = LlamaEngine(DEFAULT_MODEL, config)
        try:
            for name, messages in sets.items():
                prompts = [engine.chat_prompt(m) for m in messages] * 2
                for clients in (1, 8):
                    before = engine.stats()
                    rate = asyncio.run(level(engine, prompts, clients))
                    after = engine.stats()
                    drafted = after.drafted_tokens - before.drafted_tokens
                    accepted = after.accepted_tokens - before.accepted_tokens
                    figures[name, clients, speculative] = (rate, accepted, drafted)
                    log.info("%s c=%d speculative=%s: %.1f tok/s", name, clients, speculative, rate)
        finally:
            engine.close()
    for name in sets:
        for clients in (1, 8):
            off, _, _ = figures[name, clients, False]
            on, accepted, drafted = figures[name, clients, True]
            rows.append(
                f"| {name} | {clients} | {off:.1f} | {on:.1f} | {on / off:.2f} "
                f"| {accepted}/{drafted} |"
            )
    sys.stdout.write(
        f"in-process engine, {args.parallel} slots, {args.max_tokens} tokens, temperature 0, "
        "each prompt twice\n" + "\n".join(rows) + "\n"
    )
    return 0


def main() -> int:
    """Parse the options and run the chosen mode."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="sweeps per system; medians shown")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=", ".join(SYSTEMS))
    parser.add_argument("--sets", default=",".join(SETS), help=", ".join(SETS))
    parser.add_argument("--levels", default="1,8,16", help="clients, general set")
    parser.add_argument("--copy-levels", default="1,8", help="clients, copy-heavy passes")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=16, help="slots of every system")
    parser.add_argument("--n-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--myllama-args", default="", help="extra `myllama serve` arguments")
    parser.add_argument(
        "--level-timeout",
        dest="timeout",
        type=float,
        default=120.0,
        help="seconds per level; streams not complete by then count as incomplete",
    )
    parser.add_argument("--no-probe", action="store_true", help="skip the shared-prefix probe")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/serving_bench.json"))
    parser.add_argument(
        "--speculation",
        action="store_true",
        help="ours with --no-speculative and --speculative on general and copy-heavy prompts",
    )
    parser.add_argument(
        "--engine-speculation",
        action="store_true",
        help="the same comparison on the in-process engine (no HTTP)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.engine_speculation:
        return engine_speculation(args)
    if args.speculation:
        return run_speculation(args)
    args.systems = [s for s in args.systems.split(",") if s]
    args.sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in args.systems if s not in SYSTEMS] + [
        s for s in args.sets if s not in SETS
    ]
    if unknown:
        parser.error(f"unknown system or set: {', '.join(unknown)}")
    args.levels = [int(x) for x in args.levels.split(",")]
    args.copy_levels = [int(x) for x in args.copy_levels.split(",")]
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())

"""Serving benchmark: My LLAMA vs llama-cpp-python's own server, concurrency sweep, same run.

Usage: .venv/bin/python benchmarks/serving_bench.py [--levels 1,2,4,8,16] [--max-tokens 128]
Prints per server and level: aggregate output tok/s, TTFT p50/p95, TPOT p50, E2E p95, completed
streams, and the ratio against llama_cpp.server measured in the same run; also the single-stream
tok/s of in-process `Llama.create_chat_completion`.

With --speculation it instead runs My LLAMA twice (--no-speculative, then --speculative) on the
general chat prompts and on the copy-heavy set (prompts/sets/heavy-copy.jsonl, each prompt sent
twice: a c=1 pass, then a c=8 pass), and prints tok/s, TTFT and the drafts accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.latency import RequestRecord, summarise
from models.catalog import DEFAULT_MODEL
from tests.helpers import free_port, running_myllama, wait_for

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


Messages = list[dict[str, str]]


def prompt(i: int) -> Messages:
    """A prompt that asks for a long answer."""
    return [{"role": "user", "content": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}]


def general_prompts() -> list[Messages]:
    """The general chat prompts: one long story per topic."""
    return [prompt(i) for i in range(len(TOPICS))]


def copy_heavy_prompts() -> list[Messages]:
    """The copy-heavy set: summarise, rewrite, extract or edit a given text of 300+ tokens."""
    from prompts.sets import load_prompt_set

    return [list(p.messages) for p in load_prompt_set("heavy-copy").prompts]


async def one_request(
    http: httpx.AsyncClient, url: str, i: int, max_tokens: int, messages: Messages | None = None
) -> RequestRecord:
    """Stream one chat completion and time every token."""
    record = RequestRecord(prompt_id=str(i))
    body = {
        "model": DEFAULT_MODEL.id,
        "messages": messages or prompt(i),
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    chunks = 0
    done = False
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
                        chunks += 1
                    record.finish_reason = choice.get("finish_reason") or record.finish_reason
                if event.get("usage"):
                    record.output_tokens = event["usage"]["completion_tokens"]
    except httpx.HTTPError as exc:
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    if not done or record.finish_reason not in ("stop", "length"):
        record.error = "stream ended early"
        return record
    record.e2e = time.perf_counter() - started
    record.output_tokens = record.output_tokens or chunks
    return record


async def sweep_level(
    url: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    prompts: list[Messages] | None = None,
) -> dict:
    """Run `requests` streams with `concurrency` in flight; summarise them."""
    gate = asyncio.Semaphore(concurrency)

    async def gated(http: httpx.AsyncClient, i: int) -> RequestRecord:
        async with gate:
            messages = prompts[i % len(prompts)] if prompts else None
            return await one_request(http, url, i, max_tokens, messages)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await one_request(http, url, 99, 8)  # warm-up
        started = time.perf_counter()
        records = await asyncio.gather(*(gated(http, i) for i in range(requests)))
        wall = time.perf_counter() - started
    figures = summarise(list(records), wall)
    figures["completed"] = float(sum(r.ok for r in records))
    # aggregate throughput counts every token streamed, also those of streams cut short
    received = sum(r.output_tokens if r.ok else len(r.token_times) for r in records)
    figures["output_tok_per_s"] = received / wall
    return figures


SYSTEM = "You are a careful assistant for a shipping company. " + " ".join(
    f"Rule {i}: answer politely, cite the handbook section {i}, and never guess." for i in range(40)
)


def prefix_reuse_ttft(url: str, requests: int = 8) -> dict[str, float]:
    """TTFT of sequential requests that share a long system prompt, and the tokens reused."""
    ttfts, cached, prompt_tokens = [], 0, 0
    with httpx.Client(timeout=120) as http:
        for i in range(requests + 1):
            body = {
                "model": DEFAULT_MODEL.id,
                "max_tokens": 1,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Question {i}: where is my parcel?"},
                ],
            }
            started = time.perf_counter()
            usage = http.post(f"{url}/v1/chat/completions", json=body).json()["usage"]
            if i:  # the first request fills the cache
                ttfts.append(time.perf_counter() - started)
                cached += usage["prompt_tokens_details"]["cached_tokens"]
                prompt_tokens += usage["prompt_tokens"]
    return {
        "ttft_p50_s": statistics.median(ttfts),
        "cached_share": cached / prompt_tokens,
        "prompt_tokens": prompt_tokens / requests,
    }


def in_process_tok_s(max_tokens: int, runs: int = 3) -> float:
    """Median single-stream tok/s of llama-cpp-python's high-level API in this process."""
    from llama_cpp import Llama

    llm = Llama(str(DEFAULT_MODEL.gguf_path()), n_ctx=2048, verbose=False)
    rates = []
    for i in range(runs):
        started, tokens = time.perf_counter(), 0
        for chunk in llm.create_chat_completion(
            prompt(i), max_tokens=max_tokens, temperature=0, stream=True
        ):
            tokens += bool(chunk["choices"][0]["delta"].get("content"))
        rates.append(tokens / (time.perf_counter() - started))
    del llm
    return statistics.median(rates)


def run_sweep(name: str, url: str, levels: list[int], max_tokens: int) -> dict[int, dict]:
    """All concurrency levels against one server."""
    results = {}
    for level in levels:
        requests = max(2 * level, 4)
        figures = asyncio.run(sweep_level(url, level, requests, max_tokens))
        log.info(
            "%s c=%d: %.1f tok/s, %d/%d complete",
            name,
            level,
            figures["output_tok_per_s"],
            figures["completed"],
            requests,
        )
        results[level] = figures
    return results


def start_baseline(port: int) -> tuple:
    """llama-cpp-python's own OpenAI server on the same GGUF."""
    import subprocess

    log_file = open(Path("test-artifacts") / "llama_cpp_server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(DEFAULT_MODEL.gguf_path()),
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "bench",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    return process, log_file


def table(ours: dict[int, dict], base: dict[int, dict], single_in_process: float) -> str:
    """The figures as a Markdown table."""
    rows = [
        "| server | clients | tok/s | TTFT p50 | TTFT p95 | TPOT p50 | E2E p95 | complete "
        "| ×baseline tok/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, results in (("myllama", ours), ("llama_cpp.server", base)):
        for level, f in results.items():
            ratio = f["output_tok_per_s"] / max(base[level]["output_tok_per_s"], 1e-9)
            rows.append(
                f"| {name} | {level} | {f['output_tok_per_s']:.1f} | {f.get('ttft_s_p50', 0):.3f} "
                f"| {f.get('ttft_s_p95', 0):.3f} | {f.get('tpot_s_p50', 0) * 1000:.1f} ms "
                f"| {f.get('e2e_s_p95', 0):.2f} | {int(f['completed'])}/{int(f['requests'])} "
                f"| {ratio:.2f} |"
            )
    first = min(ours)
    rows.append("")
    rows.append(
        f"in-process Llama.create_chat_completion, 1 stream: {single_in_process:.1f} tok/s; "
        f"myllama 1 stream = {ours[first]['output_tok_per_s'] / single_in_process:.2f}× that"
    )
    if 8 in ours:
        scale = ours[8]["output_tok_per_s"] / max(ours[first]["output_tok_per_s"], 1e-9)
        rows.append(f"myllama 8 clients = {scale:.2f}x its single stream")
    return "\n".join(rows)


def scrape(url: str, name: str) -> float:
    """Sum of a Prometheus sample family on the server's /metrics (NaN when not exported)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} ", f"{name}_total{{", f"{name}_total "))
    ]
    return sum(values) if values else float("nan")


def speculation_sweep(serve: list[str], url: str, max_tokens: int) -> dict[str, dict[int, dict]]:
    """General chat and copy-heavy prompts at 1 and 8 clients against one running server."""
    results: dict[str, dict[int, dict]] = {}
    for set_name, prompts in (("general", general_prompts()), ("copy-heavy", copy_heavy_prompts())):
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
            log.info(
                "%s %s c=%d: %.1f tok/s",
                " ".join(serve[-1:]),
                set_name,
                level,
                figures["output_tok_per_s"],
            )
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
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [
            "serve",
            "--port",
            str(port),
            "--parallel",
            str(args.parallel),
            "--max-queue",
            "256",
            "--no-load-predictors",
            *(["--n-threads", str(args.n_threads)] if args.n_threads else []),
            flag,
        ]
        with running_myllama(serve, f"{url}/health", log_name="bench-server"):
            runs[mode] = speculation_sweep(serve, url, args.max_tokens)
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
    sets = {"general": general_prompts(), "heavy-copy": copy_heavy_prompts()}
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
    """Run the sweep against both servers and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--parallel", type=int, default=16, help="myllama --parallel")
    parser.add_argument("--n-threads", type=int, default=None, help="myllama --n-threads")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/serving_bench.json"))
    parser.add_argument(
        "--speculation",
        action="store_true",
        help="compare --no-speculative and --speculative on general and copy-heavy prompts",
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
        args.out.parent.mkdir(parents=True, exist_ok=True)
        return run_speculation(args)
    levels = [int(x) for x in args.levels.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)

    single = float("nan") if args.skip_in_process else in_process_tok_s(args.max_tokens)
    log.info("in-process single stream: %.1f tok/s", single)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [
        "serve",
        "--port",
        str(port),
        "--parallel",
        str(args.parallel),
        "--max-queue",
        "256",
        "--no-load-predictors",
        *(["--n-threads", str(args.n_threads)] if args.n_threads else []),
    ]
    with running_myllama(serve, f"{url}/health", log_name="bench-server"):
        ours = run_sweep("myllama", url, levels, args.max_tokens)
        reuse = prefix_reuse_ttft(url)
    with running_myllama([*serve, "--no-prefix-cache"], f"{url}/health", log_name="bench-server"):
        no_reuse = prefix_reuse_ttft(url)
    log.info("prefix reuse: %s; without: %s", reuse, no_reuse)

    base: dict[int, dict] = {}
    if not args.skip_baseline:
        port = free_port()
        process, log_file = start_baseline(port)
        try:
            wait_for(f"http://127.0.0.1:{port}/v1/models", process)
            base = run_sweep(
                "llama_cpp.server", f"http://127.0.0.1:{port}", levels, args.max_tokens
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
            log_file.close()
    else:
        base = {
            level: {"output_tok_per_s": float("nan"), "completed": 0, "requests": 0}
            for level in levels
        }

    results = {
        "in_process": single,
        "myllama": ours,
        "baseline": base,
        "prefix_reuse": reuse,
        "no_prefix_reuse": no_reuse,
    }
    args.out.write_text(json.dumps(results, indent=1))
    sys.stdout.write(
        f"myllama serve --parallel {args.parallel}; llama_cpp.server defaults; "
        f"{args.max_tokens} output tokens per request, temperature 0, 2 requests per client\n"
    )
    sys.stdout.write(table(ours, base, single) + "\n")
    sys.stdout.write(
        f"shared {reuse['prompt_tokens']:.0f}-token system prompt, max_tokens=1: TTFT p50 "
        f"{reuse['ttft_p50_s'] * 1000:.0f} ms with prefix reuse ({reuse['cached_share']:.0%} of "
        f"prompt tokens reused) vs {no_reuse['ttft_p50_s'] * 1000:.0f} ms without "
        f"({no_reuse['ttft_p50_s'] / reuse['ttft_p50_s']:.1f}x)\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

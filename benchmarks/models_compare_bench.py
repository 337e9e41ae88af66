"""Which quantisation to serve on this box: `models compare` of the shipped Q4_1 against variants.

Quantises the default model to each type into a temp MLflow store, runs `myllama models compare`
(Q4_1 as A, the variant as B) for each, and prints one table: size, RSS, tok/s at each
concurrency, TTFT p95, and the output drift of the variant against Q4_1.

    nice -n 10 .venv/bin/python -m benchmarks.models_compare_bench --max-tokens 48
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

from eval.compare import CompareSettings, execute
from models.catalog import DEFAULT_MODEL_ID
from models.lifecycle.actions import quantize_variant

TYPES = ("Q4_0", "Q4_K_M", "Q5_K_M", "Q8_0")


def _row(name: str, models: list[dict[str, Any]], levels: list[int], drift: str) -> str:
    """One table row: medians over the runs that measured this model."""

    def med(get: Any) -> float:
        return statistics.median(get(m) for m in models)

    cells = [
        name,
        f"{models[0]['file_size'] / 1e6:.1f}",
        f"{med(lambda m: m['rss_mb']):.0f}",
        *(
            f"{med(lambda m, c=c: m['concurrency'][str(c)]['output_tok_per_s']):.1f}"
            for c in levels
        ),
        f"{med(lambda m: m['concurrency'][str(levels[0])]['ttft_p95_s']) * 1e3:.0f}",
        f"{med(lambda m: m['concurrency'][str(levels[-1])]['ttft_p95_s']) * 1e3:.0f}",
        drift,
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Quantise, compare each variant with the shipped model, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", default="smoke")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--types", default=",".join(TYPES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        settings = CompareSettings(
            prompts=args.prompts,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            tracking_uri=store,
        )
        results: dict[str, dict[str, Any]] = {}
        for ftype in args.types.split(","):
            variant = quantize_variant(
                DEFAULT_MODEL_ID, ftype, store, output=Path(tmp) / f"{ftype.lower()}.gguf"
            )
            results[ftype] = execute(DEFAULT_MODEL_ID, variant["id"], settings)
    levels = settings.levels
    header = ["model", "size MB", "RSS MB", *(f"c={c} tok/s" for c in levels)]
    header += [f"TTFT p95 c={levels[0]} ms", f"TTFT p95 c={levels[-1]} ms", "drift vs Q4_1"]
    print(
        f"\nprompt set {args.prompts}, max_tokens {args.max_tokens}, temperature 0, "
        f"each model served alone (--parallel {max(levels)}); Q4_1 row: median of its "
        f"{len(results)} runs"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    print(_row("Q4_1 (shipped)", [r["models"][0] for r in results.values()], levels, "–"))
    for ftype, result in results.items():
        drift = result["drift"]
        cosine = drift.get("paired_cosine_mean")
        summary = drift["verdict"] + (f" (paired cosine {cosine:.3f})" if cosine else "")
        print(_row(ftype, [result["models"][1]], levels, summary))


if __name__ == "__main__":
    main()

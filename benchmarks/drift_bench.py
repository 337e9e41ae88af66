"""Drift benchmarks: the tabular false-alarm / power table, LLM drift-statistics time, embedding.

`python -m benchmarks.drift_bench --tabular-draws 1000` prints, for every data set and size n, the
share of undrifted draws the verdict called drift (false alarms) and of shifted draws it caught
(power); `--skip-tabular` / `--skip-llm` leave a part out.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from eval.calibration import SIZES, older, population, shorter_tenure, simulate, workclass_mix
from eval.embedding_drift import compare, unit_rows
from models.embedder import Embedder
from prompts.sets import available_sets, load_prompt_set

TARGET_S = 10.0


def _answers(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference unit vectors sharing one direction; the current ones: the same plus small noise."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(1, dim))
    reference = unit_rows(centre + 1.5 * rng.normal(size=(n, dim)))
    current = unit_rows(reference + 0.3 / np.sqrt(dim) * rng.normal(size=(n, dim)))
    return reference, current


def _texts(n: int) -> list[str]:
    """n distinct answer-like texts built from the shipped prompts."""
    base = [p.messages[-1]["content"] for s in available_sets() for p in load_prompt_set(s).prompts]
    return [f"{base[i % len(base)]} (variant {i // len(base)})" for i in range(n)]


def tabular_table(draws: int) -> dict[str, float]:
    """Print false alarms (undrifted) and power (shifted) per data set and n; return them."""
    shifts = {
        "income age+5y": ("income", older(5), "age"),
        "income workclass 20 pts": ("income", workclass_mix(0.2), "workclass"),
        "churn tenure x0.7": ("churn", shorter_tenure(0.7), "tenure"),
    }
    figures: dict[str, float] = {}
    header = "".join(f"{n:>8}" for n in SIZES)
    print(f"tabular drift, {draws} draws per cell, α = 0.05 (Holm over the features)")
    print(f"{'false alarms':28}{header}")
    pools = {name: population(name) for name in ("iris", "income", "churn")}
    start = time.perf_counter()
    for name, (rows, reference_rows) in pools.items():
        rates = [simulate(rows, reference_rows, n, draws, seed=n).dataset for n in SIZES]
        figures |= {f"false_alarm_{name}_{n}": r for n, r in zip(SIZES, rates, strict=True)}
        print(f"  {name:26}" + "".join(f"{r:8.1%}" for r in rates))
    print(f"{'power (data-set verdict)':28}{header}")
    for label, (name, shift, _) in shifts.items():
        rows, reference_rows = pools[name]
        rates = [
            simulate(rows, reference_rows, n, draws, seed=n, shift=shift).dataset for n in SIZES
        ]
        key = label.replace(" ", "_")
        figures |= {f"power_{key}_{n}": r for n, r in zip(SIZES, rates, strict=True)}
        print(f"  {label:26}" + "".join(f"{r:8.1%}" for r in rates))
    print(f"  ({time.perf_counter() - start:.0f} s)")
    return figures


def main() -> None:
    """Print the tabular table, time the LLM statistics and the embedder; a JSON line last."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tabular-draws", type=int, default=1000)
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--embed-texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    if not args.skip_tabular:
        figures |= tabular_table(args.tabular_draws)
    if args.skip_llm:
        print(json.dumps(figures))
        return

    reference, current = _answers(args.answers, args.dim, seed=0)
    stat_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        report = compare(reference, current, threshold=0.9, permutations=args.permutations)
        stat_times.append(time.perf_counter() - start)
    best, worst = min(stat_times), max(stat_times)
    print(
        f"drift statistics, {args.answers} answers × {args.dim} dims, "
        f"{args.permutations} permutations/resamples: best {best:.2f} s, worst {worst:.2f} s "
        f"(target ≤ {TARGET_S:.0f} s: {'met' if worst <= TARGET_S else 'NOT met'})"
    )
    print(f"  verdict (same answers plus small per-answer noise): {report.reason}")

    embedder = Embedder()
    start = time.perf_counter()
    embedder.load()
    load_s = time.perf_counter() - start
    texts = _texts(args.embed_texts)
    tokens = embedder.count_tokens(texts)
    start = time.perf_counter()
    embedder.embed(texts)
    embed_s = time.perf_counter() - start
    print(
        f"embedding ({embedder.model_id}, CPU): load {load_s:.1f} s; {len(texts)} texts, "
        f"{tokens} tokens in {embed_s:.2f} s = {len(texts) / embed_s:.0f} texts/s, "
        f"{tokens / embed_s:.0f} tokens/s"
    )
    figures |= {
        "stats_best_s": best,
        "stats_worst_s": worst,
        "stats_target_s": TARGET_S,
        "embed_load_s": load_s,
        "embed_texts_per_s": len(texts) / embed_s,
        "embed_tokens_per_s": tokens / embed_s,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

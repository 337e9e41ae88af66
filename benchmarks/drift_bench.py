"""Drift-statistics time for 1,000 answers × 384 dims (target ≤ 10 s) and embedding throughput."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

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


def main() -> None:
    """Time the statistics, then the embedder; print the figures and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--embed-texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

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
    figures = {
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

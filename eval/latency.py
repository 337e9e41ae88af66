"""Latency figures (vLLM / GenAI-Perf definitions): TTFT, TPOT, ITL, E2E, output tok/s."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PERCENTILES = (50, 95, 99)


@dataclass
class RequestRecord:
    """What one streamed request measured; times in seconds since it was sent."""

    prompt_id: str
    answer: str = ""
    ttft: float | None = None
    e2e: float | None = None
    token_times: list[float] = field(default_factory=list)
    output_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the request finished without error."""
        return self.error is None and self.e2e is not None

    @property
    def tpot(self) -> float | None:
        """(E2E − TTFT) / (output tokens − 1); None for answers of one token or fewer."""
        if not self.ok or self.ttft is None or not self.output_tokens or self.output_tokens < 2:
            return None
        assert self.e2e is not None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)

    @property
    def itl(self) -> list[float]:
        """Every gap between consecutive streamed tokens."""
        return [b - a for a, b in zip(self.token_times, self.token_times[1:], strict=False)]


def percentiles(values: list[float], prefix: str) -> dict[str, float]:
    """mean and p50/p95/p99 of `values` under `prefix` (empty → nothing)."""
    if not values:
        return {}
    arr = np.asarray(values, dtype=float)
    out = {f"{prefix}_mean": float(arr.mean())}
    for q in PERCENTILES:
        out[f"{prefix}_p{q}"] = float(np.percentile(arr, q))
    return out


def summarise(records: list[RequestRecord], wall_time: float) -> dict[str, float]:
    """The figures of one concurrency level: latency percentiles and aggregate tok/s."""
    ok = [r for r in records if r.ok]
    output_tokens = sum(r.output_tokens or 0 for r in ok)
    metrics: dict[str, float] = {
        "requests": float(len(records)),
        "failed_requests": float(len(records) - len(ok)),
        "output_tokens": float(output_tokens),
        "wall_time_s": wall_time,
        "output_tok_per_s": output_tokens / wall_time if wall_time > 0 else 0.0,
        "requests_per_s": len(ok) / wall_time if wall_time > 0 else 0.0,
    }
    metrics |= percentiles([r.ttft for r in ok if r.ttft is not None], "ttft_s")
    metrics |= percentiles([t for r in ok if (t := r.tpot) is not None], "tpot_s")
    metrics |= percentiles([gap for r in ok for gap in r.itl], "itl_s")
    metrics |= percentiles([r.e2e for r in ok if r.e2e is not None], "e2e_s")
    return metrics

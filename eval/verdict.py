"""The verdict contract of every drift command: checks, Holm's rule, drift/no_drift/insufficient."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

DRIFT = "drift"
NO_DRIFT = "no_drift"
INSUFFICIENT = "insufficient_data"


@dataclass(frozen=True)
class Check:
    """One hypothesis test of one part (a feature, the predictions, the answers, TTFT...)."""

    part: str  # "feature", "prediction", "target", "answers", "latency"
    name: str
    method: str
    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """A test after the multiple-testing rule: its Holm-adjusted p-value and whether it drifted."""

    part: str
    name: str
    method: str
    statistic: float
    p_value: float
    p_adjusted: float
    threshold: float  # the adjusted p-value is compared with this (α)
    drifted: bool
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values along the last axis (family-wise error ≤ α)."""
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    if m == 0:
        return p
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted_sorted = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    adjusted = np.empty_like(adjusted_sorted)
    np.put_along_axis(adjusted, order, adjusted_sorted, axis=-1)
    return adjusted


@dataclass
class Verdict:
    """Every part's result and the one verdict, with why."""

    verdict: str
    reason: str
    alpha: float
    parts: list[Part]
    sample_sizes: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)  # part → why it was not tested

    @property
    def detected(self) -> bool:
        """Whether the verdict is drift."""
        return self.verdict == DRIFT

    def drifted(self, part: str | None = None) -> list[Part]:
        """The parts that drifted (of one kind, if given)."""
        return [p for p in self.parts if p.drifted and (part is None or p.part == part)]

    def as_json(self) -> dict[str, Any]:
        """The verdict fields of the last stdout line."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "alpha": self.alpha,
            "rule": "Holm over every test below; drift when any adjusted p-value ≤ alpha",
            "sample_sizes": self.sample_sizes,
            "parts": [asdict(p) for p in self.parts],
            "skipped": self.skipped,
        }


def decide(
    tests: list[Check],
    alpha: float,
    sample_sizes: dict[str, int],
    skipped: dict[str, str] | None = None,
    insufficient: str | None = None,
) -> Verdict:
    """Holm over all tests; `insufficient` (a reason) or no test at all gives insufficient_data."""
    skipped = dict(skipped or {})
    if insufficient is not None or not tests:
        reason = insufficient or "no part had enough data to test: " + "; ".join(
            f"{k}: {v}" for k, v in skipped.items()
        )
        parts = [_part(t, float("nan"), alpha, False) for t in tests]
        return Verdict(INSUFFICIENT, reason, alpha, parts, sample_sizes, skipped)
    adjusted = holm(np.array([t.p_value for t in tests]))
    parts = [
        _part(t, float(a), alpha, bool(a <= alpha)) for t, a in zip(tests, adjusted, strict=True)
    ]
    drifted = [p for p in parts if p.drifted]
    if drifted:
        names = ", ".join(f"{p.part} {p.name} (p_adj={p.p_adjusted:.3g})" for p in drifted)
        reason = f"{len(drifted)} of {len(parts)} tests drifted at α={alpha} (Holm): {names}"
    else:
        smallest = min(parts, key=lambda p: p.p_adjusted)
        reason = (
            f"none of {len(parts)} tests drifted at α={alpha} (Holm); smallest adjusted p-value "
            f"{smallest.p_adjusted:.3g} ({smallest.part} {smallest.name})"
        )
    return Verdict(DRIFT if drifted else NO_DRIFT, reason, alpha, parts, sample_sizes, skipped)


def _part(test: Check, adjusted: float, alpha: float, drifted: bool) -> Part:
    return Part(
        test.part,
        test.name,
        test.method,
        test.statistic,
        test.p_value,
        adjusted,
        alpha,
        drifted,
        test.n_reference,
        test.n_current,
        test.details,
    )

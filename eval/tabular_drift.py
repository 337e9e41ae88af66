"""Tabular drift tests whose null is calibrated for the current sample size (NumPy / SciPy).

Numeric columns: two-sample Kolmogorov–Smirnov, p-value from the exact distribution of the KS
statistic at the effective size n·N/(n+N) (SciPy's `kstwo`, as `ks_2samp` does for large samples);
ties (integer ages, zero capital gains) only make it conservative. Categorical columns: the χ²
statistic of the 2×k table, p-value by Monte Carlo: both samples redrawn at their own sizes from the
pooled shares (a parametric bootstrap under "same distribution"), so rare and unseen categories and
small n are handled exactly. Missing values are their own category; for numeric columns with any
missing value the missing share gets its own test, Bonferroni-combined with the KS test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from eval.verdict import Check

ALPHA = 0.05
MIN_ROWS = 30  # fewer rows in the current window: insufficient_data
RESAMPLES = 1000  # permutations per categorical test
EXCEEDANCES = 10  # a permutation test stops once this many shuffles are as extreme as the data
_CHUNK = 100
MIN_EXPECTED = 5.0  # categories expected fewer times in the current sample are pooled (Cochran)
MAX_DISCRETE_VALUES = 5  # numeric columns with this few distinct values count as categorical
MISSING = "<missing>"


def column_kind(reference: pd.Series) -> str:
    """'numeric' for numbers with more than a handful of values, else 'categorical'."""
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    return "numeric" if numeric and reference.nunique() > MAX_DISCRETE_VALUES else "categorical"


def _category(value: Any) -> str:
    """One value as a category name: numbers written the same whatever their type, NaN missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return format(float(value), "g")
    return str(value)


def categories(series: pd.Series) -> pd.Series:
    """The column's values as category names (each distinct value named once)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = np.array([_category(u) for u in uniques] + [MISSING], dtype=object)
    return pd.Series(names[codes], index=series.index)


def ks_statistics(
    reference_sorted: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """KS distance of each row of `current` (NaN = absent) to the sorted reference; row sizes."""
    cur = np.sort(np.atleast_2d(np.asarray(current, dtype=float)), axis=1)  # NaN sorts last
    sizes = (~np.isnan(cur)).sum(axis=1)
    n = np.maximum(sizes, 1)[:, None]
    rank = np.arange(1, cur.shape[1] + 1)[None, :]
    valid = rank <= sizes[:, None]
    total = len(reference_sorted)
    right = np.searchsorted(reference_sorted, cur, side="right") / total
    left = np.searchsorted(reference_sorted, cur, side="left") / total
    above = np.where(valid, rank / n - right, -np.inf).max(axis=1)
    below = np.where(valid, left - (rank - 1) / n, -np.inf).max(axis=1)
    return np.maximum(np.maximum(above, below), 0.0), sizes


def ks_pvalues(distance: np.ndarray, n_reference: int, n_current: np.ndarray) -> np.ndarray:
    """P(D ≥ d) from the exact KS distribution at the effective size (1 where a side is empty)."""
    n_current = np.asarray(n_current)
    effective = np.round(n_reference * n_current / np.maximum(n_reference + n_current, 1))
    p = stats.kstwo.sf(distance, np.maximum(effective, 1))
    return np.where((n_current == 0) | (n_reference == 0), 1.0, np.clip(p, 0.0, 1.0))


def chi2_statistics(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """Pearson χ² of the 2×k homogeneity table for each row: Σ (a·n − c·N)² / (N·n·(a + c))."""
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    n_ref, n_cur = ref.sum(axis=-1, keepdims=True), cur.sum(axis=-1, keepdims=True)
    total = ref + cur
    gap = ref * n_cur - cur * n_ref
    terms = np.divide(gap * gap, total, out=np.zeros_like(total), where=total > 0)
    return terms.sum(axis=-1) / np.maximum(n_ref * n_cur, 1)[..., 0]


def chi2_permutation_pvalues(
    reference_counts: np.ndarray,
    current_counts: np.ndarray,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> tuple[np.ndarray, np.ndarray]:
    """(χ², permutation p-value) per row of `current_counts` (B×k) against one reference (k).

    Shuffling which rows are "reference" and which "current" keeps every category's total, so the
    current counts of a shuffle are one multivariate hypergeometric draw (R's simulate.p.value).
    Sequential (Besag & Clifford 1991): a test stops at its EXCEEDANCES-th shuffle at least as
    extreme as the data, with p = EXCEEDANCES / shuffles drawn; else p = (1 + exceeding) / (1 + R).
    """
    ref = np.asarray(reference_counts, dtype=np.int64)
    cur = np.atleast_2d(np.asarray(current_counts, dtype=np.int64))
    observed, p = np.zeros(len(cur)), np.ones(len(cur))
    for b, row in enumerate(cur):
        merged_ref, merged_cur = pool_sparse(ref, row)
        observed[b] = chi2_statistics(merged_ref, merged_cur)
        if merged_cur.sum() > 0 and observed[b] > 1e-12:
            total = merged_ref + merged_cur
            p[b] = _sequential_p(total, int(merged_cur.sum()), observed[b], rng, resamples)
    return observed, p


def pool_sparse(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Categories expected fewer than MIN_EXPECTED times in the current sample, pooled into one.

    The rule looks only at each category's total over both samples, which no shuffle changes, so
    the permutation null stays exact; without it one rare category (two "Never-worked" rows where
    0.06 are expected) dominates χ² and its null tail, and hides shifts of the common ones.
    """
    total = reference + current
    expected = current.sum() * total / max(int(total.sum()), 1)
    sparse = (expected < MIN_EXPECTED) & (total > 0)
    if sparse.sum() < 2:
        return reference, current
    keep = ~sparse & (total > 0)
    return (
        np.r_[reference[keep], reference[sparse].sum()],
        np.r_[current[keep], current[sparse].sum()],
    )


def _sequential_p(
    total: np.ndarray, n_cur: int, observed: float, rng: np.random.Generator, resamples: int
) -> float:
    """Besag–Clifford sequential permutation p-value of one 2×k table with column sums `total`."""
    drawn = exceeding = 0
    while drawn < resamples:
        size = min(_CHUNK, resamples - drawn)
        sim_cur = rng.multivariate_hypergeometric(total, n_cur, size=size, method="marginals")
        hits = chi2_statistics(total[None, :] - sim_cur, sim_cur) >= observed * (1 - 1e-9)
        running = exceeding + np.cumsum(hits)
        if running[-1] >= EXCEEDANCES:
            return EXCEEDANCES / (drawn + int(np.argmax(running >= EXCEEDANCES)) + 1)
        drawn, exceeding = drawn + size, int(running[-1])
    return (1 + exceeding) / (1 + resamples)


@dataclass
class ReferenceColumn:
    """One reference column prepared once: its kind, sorted values or category counts."""

    name: str
    kind: str
    values: np.ndarray  # numeric: sorted present values; categorical: unused (empty)
    missing: int
    categories: list[str]
    counts: np.ndarray

    @classmethod
    def build(cls, name: str, series: pd.Series) -> ReferenceColumn:
        """Prepare `series` (the reference column)."""
        kind = column_kind(series.dropna())
        if kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(float)
            present = np.sort(values[~np.isnan(values)])
            missing = int(np.isnan(values).sum())
            return cls(name, kind, present, missing, [], np.array([len(present), missing]))
        shares = categories(series).value_counts()
        return cls(
            name,
            kind,
            np.empty(0),
            int(shares.get(MISSING, 0)),
            list(shares.index),
            shares.to_numpy(),
        )

    @property
    def rows(self) -> int:
        """Reference rows, missing ones included."""
        return int(self.counts.sum())

    def encode(self, series: pd.Series) -> np.ndarray:
        """Current values as floats (NaN missing) or category codes (unseen ones after known)."""
        if self.kind == "numeric":
            return pd.to_numeric(series, errors="coerce").to_numpy(float)
        codes = {c: i for i, c in enumerate(self.categories)}
        names = categories(series)
        for name in names.unique():
            codes.setdefault(name, len(codes))
        return names.map(codes).to_numpy(np.int64)

    def test_batch(
        self, current: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES
    ) -> tuple[np.ndarray, np.ndarray]:
        """(statistic, p-value) for each row of encoded current samples (B×n)."""
        current = np.atleast_2d(current)
        if self.kind == "categorical":
            width = max(len(self.categories), int(current.max()) + 1 if current.size else 0)
            counts = category_counts(current, width)
            ref = np.r_[self.counts, np.zeros(width - len(self.counts), dtype=np.int64)]
            return chi2_permutation_pvalues(ref, counts, rng, resamples)
        distance, sizes = ks_statistics(self.values, current)
        p = ks_pvalues(distance, len(self.values), sizes)
        missing_cur = current.shape[1] - sizes
        if self.missing == 0 and not missing_cur.any():
            return distance, p
        _, p_missing = chi2_permutation_pvalues(
            np.array([len(self.values), self.missing]),
            np.c_[sizes, missing_cur],
            rng,
            resamples,
        )
        return distance, np.minimum(1.0, 2 * np.minimum(p, p_missing))  # Bonferroni of the two

    def method(self, current: np.ndarray) -> str:
        """The name of the test used for this current sample."""
        if self.kind == "categorical":
            return "chi2_permutation"
        has_missing = self.missing > 0 or bool(np.isnan(current).any())
        return "ks_exact+missing_share" if has_missing else "ks_exact"

    def effect_sizes(self, current: np.ndarray) -> dict[str, Any]:
        """Descriptive distances (not used for the verdict): Wasserstein/std, JS (natural log)."""
        if self.kind == "numeric":
            present = current[~np.isnan(current)]
            std = float(np.std(self.values)) or 1.0
            wasserstein = (
                stats.wasserstein_distance(self.values, present) / std if len(present) else None
            )
            return {
                "wasserstein_over_std": wasserstein,
                "missing_share_reference": self.missing / max(self.rows, 1),
                "missing_share_current": float(np.isnan(current).mean()) if len(current) else None,
                "mean_reference": float(self.values.mean()) if len(self.values) else None,
                "mean_current": float(present.mean()) if len(present) else None,
            }
        width = max(len(self.categories), int(current.max()) + 1 if current.size else 0)
        cur = category_counts(current[None, :], width)[0]
        ref = np.r_[self.counts, np.zeros(width - len(self.counts))]
        names = self.categories + [f"new-{i}" for i in range(len(self.categories), width)]
        return {
            "jensen_shannon_nat": float(jensenshannon(ref / ref.sum(), cur / max(cur.sum(), 1))),
            "missing_share_reference": self.missing / max(self.rows, 1),
            "top_shares": {
                n: [round(float(r / ref.sum()), 4), round(float(c / max(cur.sum(), 1)), 4)]
                for n, r, c in list(zip(names, ref, cur, strict=True))[:12]
            },
        }


def category_counts(codes: np.ndarray, width: int) -> np.ndarray:
    """Counts of each code (0..width−1) in every row of a B×n code matrix."""
    codes = np.atleast_2d(codes)
    offsets = codes + width * np.arange(len(codes))[:, None]
    return np.bincount(offsets.ravel(), minlength=width * len(codes)).reshape(len(codes), width)


def column_test(
    part: str,
    reference: ReferenceColumn,
    current: pd.Series,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
) -> Check:
    """Check one current column against its prepared reference."""
    encoded = reference.encode(current)
    statistic, p = reference.test_batch(encoded[None, :], rng, resamples)
    details: dict[str, Any] = {"kind": reference.kind, **reference.effect_sizes(encoded)}
    if reference.kind == "numeric":
        n_present = int((~np.isnan(encoded)).sum())
        effective = round(
            len(reference.values) * n_present / max(len(reference.values) + n_present, 1)
        )
        details["ks_critical_distance_at_alpha"] = (
            float(stats.kstwo.isf(ALPHA, effective)) if effective else None
        )
    return Check(
        part,
        reference.name,
        reference.method(encoded),
        float(statistic[0]),
        float(p[0]),
        reference.rows,
        len(current),
        details,
    )


def feature_tests(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: list[str],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> list[Check]:
    """One test per feature of `current` against `reference`."""
    missing = [c for c in features if c not in current.columns]
    if missing:
        raise ValueError(f"the current data lacks the features {missing}")
    if not features:
        raise ValueError("the reference has no feature columns")
    rng = np.random.default_rng(seed)
    return [
        column_test("feature", ReferenceColumn.build(c, reference[c]), current[c], rng, resamples)
        for c in features
    ]


def labels_test(
    part: str,
    name: str,
    reference: pd.Series,
    current: pd.Series,
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Check:
    """Categorical test of a label column: predictions vs predictions, or true vs true labels."""
    column = ReferenceColumn.build(name, reference.astype(str))  # strings: always categorical
    return column_test(part, column, current.astype(str), np.random.default_rng(seed), resamples)

"""Seeded simulations of the tabular drift verdict on the real data: few false alarms, power."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from eval.calibration import (
    SIZES,
    Shift,
    older,
    population,
    shorter_tenure,
    simulate,
    workclass_mix,
)
from eval.tabular_drift import ALPHA

DRAWS = 200  # undrifted draws per size (≥ 100)
POWER_DRAWS = 100
# A true false-alarm rate of α gives more than this many alarms in DRAWS only 1 % of the time.
TOLERATED = int(stats.binom.ppf(0.99, DRAWS, ALPHA))


@pytest.fixture(scope="module")
def pools() -> dict[str, tuple[pd.DataFrame, int]]:
    """Every data set's rows and training size, loaded once."""
    return {name: population(name) for name in ("iris", "income", "churn")}


@pytest.mark.parametrize("name", ["iris", "income", "churn"])
def test_clean_traffic_stays_quiet_at_every_size(
    name: str, pools: dict[str, tuple[pd.DataFrame, int]]
) -> None:
    """Reference and current drawn from one distribution: data-set false alarms ≤ α at each n.

    Per size, the count must not be significantly above α (binomial, 1 %); over all sizes
    together (1,200 draws) the observed share itself must be ≤ α.
    """
    rows, reference_rows = pools[name]
    rates = {n: simulate(rows, reference_rows, n, DRAWS, seed=2026 + n) for n in SIZES}
    alarms = {n: round(r.dataset * DRAWS) for n, r in rates.items()}
    assert all(a <= TOLERATED for a in alarms.values()), alarms
    assert sum(alarms.values()) / (DRAWS * len(SIZES)) <= ALPHA, alarms
    worst_feature = max(max(r.features.values()) for r in rates.values())
    assert worst_feature <= ALPHA, {n: r.features for n, r in rates.items()}


@pytest.mark.parametrize(
    ("name", "shift", "column"),
    [
        ("income", older(5), "age"),
        ("income", workclass_mix(0.2), "workclass"),
        ("churn", shorter_tenure(0.7), "tenure"),
    ],
    ids=["age+5y", "workclass-mix-20pts", "tenure-x0.7"],
)
@pytest.mark.parametrize("n", [300, 1000, 5000])
def test_shifts_are_found_from_300_rows(
    name: str, shift: Shift, column: str, n: int, pools: dict[str, tuple[pd.DataFrame, int]]
) -> None:
    """age + 5 y, 20 points of the workclass mix moved, tenure × 0.7: flagged in ≥ 90 % of draws."""
    rows, reference_rows = pools[name]
    rates = simulate(rows, reference_rows, n, POWER_DRAWS, seed=n, shift=shift)
    assert rates.dataset >= 0.9 and rates.features[column] >= 0.9, rates
    others = {c: r for c, r in rates.features.items() if c != column}
    assert max(others.values()) <= 0.1, others  # the shifted column is the one blamed

"""Tabular drift statistics on synthetic frames: the right test per column, the right verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval.tabular_drift import column_drift, column_kind, table_drift


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """n synthetic rows with numeric, categorical and binary columns; age shifted by `shift`."""
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "smoker": rng.choice([0, 1], n, p=[0.8, 0.2]),
            "label": rng.choice(["yes", "no"], n),
        }
    )


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(3)


def test_column_kinds(rng: np.random.Generator) -> None:
    """Numbers are numeric; strings and 0/1 columns are categorical."""
    frame = _frame(rng, 200)
    kinds = {c: column_kind(frame[c]) for c in frame}
    assert kinds == {
        "age": "numeric",
        "income": "numeric",
        "colour": "categorical",
        "smoker": "categorical",
        "label": "categorical",
    }


def test_small_reference_uses_tests_and_sees_a_shift(rng: np.random.Generator) -> None:
    """≤ 1,000 reference rows: KS/chi²/z tests, and a 15-year age shift is flagged."""
    reference = _frame(rng, 800)
    same = table_drift(reference, _frame(rng, 400))
    methods = {c.column: c.method for c in same.features}
    assert methods == {
        "age": "ks",
        "income": "ks",
        "colour": "chi_square",
        "smoker": "z_two_proportions",
    }
    assert same.label is not None and same.label.method == "z_two_proportions"
    assert not same.dataset_drift and same.share_drifted <= 0.25
    shifted = table_drift(reference, _frame(rng, 400, shift=15))
    age = next(c for c in shifted.features if c.column == "age")
    assert age.drifted and age.statistic < 1e-6 and age.threshold == 0.05
    assert not shifted.dataset_drift


def test_large_reference_uses_distances(rng: np.random.Generator) -> None:
    """> 1,000 reference rows: Wasserstein/JS distances; 3 of 4 drifted is data-set drift."""
    reference = _frame(rng, 5000)
    result = table_drift(reference, _frame(rng, 2000))
    assert {c.method for c in result.features} == {"wasserstein_over_std", "jensen_shannon"}
    assert not any(c.drifted for c in result.features)
    current = _frame(rng, 2000, shift=15)
    current["colour"] = "red"
    current["smoker"] = 1
    result = table_drift(reference, current)
    drifted = {c.column for c in result.features if c.drifted}
    assert drifted == {"age", "colour", "smoker"}
    assert result.dataset_drift and result.share_drifted == 0.75
    age = next(c for c in result.features if c.column == "age")
    assert age.statistic == pytest.approx(15 / reference["age"].std(ddof=0), rel=0.15)
    table = result.frame()
    assert list(table["column"]) == ["age", "income", "colour", "smoker", "label"]


def test_psi_on_request(rng: np.random.Generator) -> None:
    """use_psi switches every column to PSI, which flags the age shift."""
    reference = _frame(rng, 3000)
    same = table_drift(reference, _frame(rng, 3000), use_psi=True)
    assert {c.method for c in same.features} == {"psi"}
    assert not any(c.drifted for c in same.features)
    shifted = column_drift("age", reference["age"], _frame(rng, 3000, shift=15)["age"], True)
    assert shifted.drifted and shifted.statistic > 1.0


def test_new_categories_and_bad_input(rng: np.random.Generator) -> None:
    """An unseen category drifts; missing features or an all-NaN column raise ValueError."""
    reference = _frame(rng, 300)
    current = _frame(rng, 300)
    current["colour"] = "purple"
    colour = column_drift("colour", reference["colour"], current["colour"])
    assert colour.drifted and colour.method == "chi_square"
    with pytest.raises(ValueError, match="lacks the features"):
        table_drift(reference, current.drop(columns="age"))
    with pytest.raises(ValueError, match="no values"):
        column_drift("age", reference["age"], pd.Series([np.nan, np.nan]))

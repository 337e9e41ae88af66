"""Tabular drift tests on synthetic frames: the right test per column, exact statistics, Holm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from eval.tabular_drift import (
    MISSING,
    ReferenceColumn,
    chi2_statistics,
    column_kind,
    feature_tests,
    ks_statistics,
    labels_test,
    pool_sparse,
)
from eval.verdict import INSUFFICIENT, NO_DRIFT, Check, decide, holm


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    """n synthetic rows with numeric, categorical and binary columns; age shifted by `shift`."""
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 12, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "smoker": rng.choice([0, 1], n, p=[0.8, 0.2]),
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
    }


def test_ks_distance_matches_scipy_with_ties(rng: np.random.Generator) -> None:
    """The vectorised KS distance equals SciPy's, ties included, row by row."""
    reference = rng.integers(0, 20, 700).astype(float)
    current = rng.integers(2, 22, (5, 40)).astype(float)
    current[0, :5] = np.nan  # absent values are left out
    distance, sizes = ks_statistics(np.sort(reference), current)
    assert sizes.tolist() == [35, 40, 40, 40, 40]
    for row, d in zip(current, distance, strict=True):
        assert d == pytest.approx(stats.ks_2samp(reference, row[~np.isnan(row)]).statistic)


def test_chi2_matches_scipy_and_sparse_categories_are_pooled() -> None:
    """χ² equals SciPy's contingency χ²; categories expected < 5 times are pooled into one."""
    ref, cur = np.array([500, 300, 200, 3, 2]), np.array([40, 35, 20, 1, 4])
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)[0]
    assert chi2_statistics(ref, cur) == pytest.approx(expected)
    merged_ref, merged_cur = pool_sparse(ref, cur)
    assert merged_ref.tolist() == [500, 300, 200, 5] and merged_cur.tolist() == [40, 35, 20, 5]


def test_same_distribution_is_quiet_and_a_shift_is_found(rng: np.random.Generator) -> None:
    """Exact KS and permutation χ²: a fresh sample passes, a 15-year age shift is flagged alone."""
    reference = _frame(rng, 3000)
    same = decide(feature_tests(reference, _frame(rng, 400), list(reference.columns)), 0.05, {})
    assert same.verdict == NO_DRIFT
    methods = {p.name: p.method for p in same.parts}
    assert methods == {
        "age": "ks_exact",
        "income": "ks_exact",
        "colour": "chi2_permutation",
        "smoker": "chi2_permutation",
    }
    shifted = decide(
        feature_tests(reference, _frame(rng, 400, 15), list(reference.columns)), 0.05, {}
    )
    assert [p.name for p in shifted.drifted()] == ["age"]
    age = shifted.drifted()[0]
    assert age.p_value < 1e-6 and age.details["wasserstein_over_std"] > 1.0


def test_missing_values_are_their_own_share(rng: np.random.Generator) -> None:
    """Missing categories count as a category; a numeric column's missing share gets a test."""
    reference = _frame(rng, 2000)
    reference.loc[:99, "colour"] = None
    column = ReferenceColumn.build("colour", reference["colour"])
    assert MISSING in column.categories
    current = _frame(rng, 300)
    current.loc[:150, "income"] = np.nan  # half the incomes missing, the rest unchanged
    tests = feature_tests(reference, current, ["income"])
    assert tests[0].method == "ks_exact+missing_share" and tests[0].p_value < 0.01
    assert tests[0].details["missing_share_current"] == pytest.approx(151 / 300)


def test_unseen_categories_and_numbers_as_categories(rng: np.random.Generator) -> None:
    """An unseen category drifts; 1 and 1.0 are the same category; bad input raises."""
    reference = _frame(rng, 1000)
    current = _frame(rng, 200)
    current["colour"] = "purple"
    current["smoker"] = current["smoker"].astype(float)
    tests = {t.name: t for t in feature_tests(reference, current, ["colour", "smoker"])}
    assert tests["colour"].p_value < 0.01 and tests["smoker"].p_value > 0.01
    with pytest.raises(ValueError, match="lacks the features"):
        feature_tests(reference, current.drop(columns="age"), ["age"])


def test_labels_compare_as_classes(rng: np.random.Generator) -> None:
    """Predicted labels: the same mix is quiet, a flipped mix is flagged."""
    reference = pd.Series(rng.choice(["<=50K", ">50K"], 5000, p=[0.76, 0.24]))
    same = labels_test("prediction", "label", reference, reference.sample(300, random_state=1))
    flipped = labels_test(
        "prediction", "label", reference, pd.Series([">50K"] * 200 + ["<=50K"] * 100)
    )
    assert same.p_value > 0.05 and flipped.p_value < 0.001 and flipped.method == "chi2_permutation"


def test_holm_and_the_verdict_rule() -> None:
    """Holm's adjusted p-values, drift when any is ≤ α, insufficient_data when told so."""
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])).tolist() == pytest.approx(
        [0.03, 0.06, 0.06, 0.02]
    )

    def test(name: str, p: float) -> Check:
        return Check("feature", name, "ks_exact", 0.1, p, 100, 50)

    verdict = decide([test("a", 0.01), test("b", 0.04), test("c", 0.5)], 0.05, {"n": 50})
    assert verdict.verdict == "drift" and [p.name for p in verdict.drifted()] == ["a"]
    quiet = decide([test("a", 0.03), test("b", 0.04)], 0.05, {})
    assert quiet.verdict == NO_DRIFT and "smallest adjusted p-value 0.06" in quiet.reason
    short = decide([], 0.05, {"current_rows": 3}, insufficient="3 rows; at least 30 are needed")
    assert short.verdict == INSUFFICIENT and short.as_json()["reason"].startswith("3 rows")

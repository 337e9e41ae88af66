"""Output-drift statistics on synthetic unit vectors sharing one direction, like real embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from eval.embedding_drift import (
    THRESHOLD_CEILING,
    calibrated_threshold,
    centroid_test,
    classifier_auc,
    compare,
    mmd_test,
    paired_cosine,
    unit_rows,
)

DIM = 384


def _sample(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> np.ndarray:
    """n unit vectors scattered around `centre`."""
    return unit_rows(centre + spread * rng.normal(size=(n, DIM)))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(7)


@pytest.fixture
def centre(rng: np.random.Generator) -> np.ndarray:
    """The direction the synthetic answers share."""
    return unit_rows(rng.normal(size=(1, DIM)))[0]


def test_unbiased_mmd_matches_its_definition(rng: np.random.Generator) -> None:
    """MMD² and the median-heuristic bandwidth equal a direct computation."""
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(6, 5)) + 0.5
    mmd2, p_value, sigma2 = mmd_test(x, y, permutations=99)
    z = np.vstack([x, y])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    assert sigma2 == pytest.approx(np.median(d2[~np.eye(13, dtype=bool)]))
    k = np.exp(-d2 / (2 * sigma2))
    kxx, kyy, kxy = k[:7, :7], k[7:, 7:], k[:7, 7:]
    expected = (kxx.sum() - 7) / (7 * 6) + (kyy.sum() - 6) / (6 * 5) - 2 * kxy.mean()
    assert mmd2 == pytest.approx(expected)
    assert 0 < p_value <= 1


def test_same_distribution_is_not_drift(rng: np.random.Generator, centre: np.ndarray) -> None:
    """Two samples of one distribution pass every test: no drift."""
    x, y = _sample(rng, centre, 60, 0.05), _sample(rng, centre, 60, 0.05)
    assert mmd_test(x, y, 500)[1] > 0.05
    assert centroid_test(x, y, 500)[1] > 0.05
    assert 0.2 < classifier_auc(x, y) < 0.8
    report = compare(x, y, threshold=None, permutations=500)
    assert not report.detected and report.p_value >= 0.05
    assert "no drift" in report.reason


def test_shifted_answers_are_drift(rng: np.random.Generator, centre: np.ndarray) -> None:
    """Samples around two different centres fail every test: drift."""
    other = unit_rows(centre + 0.05 * rng.normal(size=(1, DIM)))[0]
    x, y = _sample(rng, centre, 40, 0.05), _sample(rng, other, 40, 0.05)
    assert mmd_test(x, y, 500)[1] < 0.01
    distance, p_value = centroid_test(x, y, 500)
    assert distance > 0 and p_value < 0.01
    assert classifier_auc(x, y) > 0.9
    report = compare(x, y, threshold=0.99, permutations=500)
    assert report.detected and report.p_value < 0.05
    assert report.metrics["share_below_threshold"] > 0.5
    assert report.as_json()["detected"] is True and report.reason.startswith("drift")


def test_paired_cosine_and_calibration(rng: np.random.Generator, centre: np.ndarray) -> None:
    """Paired cosines of identical/opposite rows; the threshold is the noise floor's p1."""
    x = _sample(rng, centre, 20, 0.05)
    assert paired_cosine(x, x) == pytest.approx(np.ones(20))
    assert paired_cosine(x, -x) == pytest.approx(-np.ones(20))
    noise = np.linspace(0.8, 1.0, 101)
    assert calibrated_threshold(noise) == pytest.approx(0.81)
    assert calibrated_threshold(np.ones(10)) == THRESHOLD_CEILING
    with pytest.raises(ValueError, match="differ in shape"):
        paired_cosine(x, x[:3])
    with pytest.raises(ValueError, match="empty"):
        calibrated_threshold(np.array([]))


def test_a_few_changed_answers_under_a_deterministic_floor_are_drift(
    rng: np.random.Generator, centre: np.ndarray
) -> None:
    """A third of answers changed under a perfect noise floor is drift."""
    reference = _sample(rng, centre, 30, 0.05)
    current = reference.copy()
    current[:10] = _sample(rng, centre, 10, 0.05)
    report = compare(reference, current, threshold=THRESHOLD_CEILING, permutations=200)
    assert report.metrics["share_below_threshold"] == pytest.approx(1 / 3)
    assert report.metrics["share_below_p_value"] < 0.001
    assert report.detected

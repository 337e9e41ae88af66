"""Output drift between two sets of answer embeddings: pure NumPy / SciPy / scikit-learn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

NOISE_QUANTILE = 0.05  # share of same-settings answers allowed below the calibrated threshold
THRESHOLD_CEILING = 0.999  # identical answers differ only by float noise above this


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def paired_cosine(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Cosine similarity of each current answer with the reference answer to the same prompt."""
    if reference.shape != current.shape:
        raise ValueError(f"paired arrays differ in shape: {reference.shape} vs {current.shape}")
    return np.sum(unit_rows(reference) * unit_rows(current), axis=1)


def calibrated_threshold(noise_floor: np.ndarray, quantile: float = NOISE_QUANTILE) -> float:
    """The paired-cosine threshold: the `quantile` of same-settings similarities, capped."""
    if len(noise_floor) == 0:
        raise ValueError("the noise floor is empty")
    return float(min(np.quantile(noise_floor, quantile), THRESHOLD_CEILING))


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.sum(z * z, axis=1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)


def median_bandwidth(d2: np.ndarray) -> float:
    """Median heuristic: σ² = median of the off-diagonal squared distances."""
    off = d2[~np.eye(len(d2), dtype=bool)]
    positive = off[off > 0]
    return float(np.median(positive)) if len(positive) else 1.0


def _mmd2_from_indicators(k: np.ndarray, a: np.ndarray, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² for each column of `a` (1 marks the first sample), K with unit diagonal."""
    ka = k @ a
    k1 = k.sum(axis=1)
    xx = np.sum(a * ka, axis=0)
    xy = a.T @ k1 - xx
    yy = k1.sum() - 2.0 * (a.T @ k1) + xx
    return (xx - n) / (n * (n - 1)) + (yy - m) / (m * (m - 1)) - 2.0 * xy / (n * m)


def mmd_test(
    x: np.ndarray, y: np.ndarray, permutations: int = 1000, seed: int = 0, chunk: int = 250
) -> tuple[float, float, float]:
    """(MMD², permutation p-value, σ²) with an RBF kernel and the median heuristic."""
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least two samples on each side")
    z = np.vstack([x, y]).astype(np.float64)
    d2 = _sq_dists(z)
    sigma2 = median_bandwidth(d2)
    k = np.exp(-d2 / (2.0 * sigma2))
    observed = np.zeros((n + m, 1))
    observed[:n] = 1.0
    mmd2 = float(_mmd2_from_indicators(k, observed, n, m)[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, chunk):
        size = min(chunk, permutations - start)
        a = np.zeros((n + m, size))
        for j in range(size):
            a[rng.permutation(n + m)[:n], j] = 1.0
        exceed += int(np.sum(_mmd2_from_indicators(k, a, n, m) >= mmd2))
    return mmd2, (1 + exceed) / (1 + permutations), sigma2


def centroid_distance(x: np.ndarray, y: np.ndarray) -> float:
    """1 − cosine similarity of the two samples' mean embeddings."""
    cx, cy = x.mean(axis=0), y.mean(axis=0)
    denom = np.linalg.norm(cx) * np.linalg.norm(cy)
    return float(1.0 - (cx @ cy) / denom) if denom > 0 else 0.0


def centroid_test(
    x: np.ndarray, y: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(centroid cosine distance, p-value against a bootstrap null drawn from the pooled sample)."""
    observed = centroid_distance(x, y)
    pooled = np.vstack([x, y]).astype(np.float64)
    rng = np.random.default_rng(seed)
    n, m = len(x), len(y)
    uniform = np.full(len(pooled), 1.0 / len(pooled))
    cx = rng.multinomial(n, uniform, size=resamples) @ pooled / n
    cy = rng.multinomial(m, uniform, size=resamples) @ pooled / m
    cos = np.sum(cx * cy, axis=1) / (np.linalg.norm(cx, axis=1) * np.linalg.norm(cy, axis=1))
    exceed = int(np.sum(1.0 - cos >= observed))
    return observed, (1 + exceed) / (1 + resamples)


def classifier_auc(x: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Cross-validated ROC AUC of a logistic regression telling reference (x) from current (y)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = min(5, len(x), len(y))
    if folds < 2:
        raise ValueError("the classifier AUC needs at least two samples on each side")
    features = np.vstack([x, y])
    labels = np.r_[np.zeros(len(x)), np.ones(len(y))]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(
        LogisticRegression(max_iter=1000), features, labels, cv=cv, method="decision_function"
    )
    return float(roc_auc_score(labels, scores))


@dataclass
class DriftReport:
    """The comparison of a run's answers with the reference's, and the verdict."""

    detected: bool
    p_value: float
    reason: str
    metrics: dict[str, float]
    paired: np.ndarray = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        """The `drift` object of the last stdout line."""
        return {"detected": self.detected, "p_value": self.p_value, "reason": self.reason}


def compare(
    reference: np.ndarray,
    current: np.ndarray,
    threshold: float | None,
    alpha: float = 0.05,
    permutations: int = 1000,
    seed: int = 0,
) -> DriftReport:
    """Run every test on paired rows; drift when the Bonferroni-adjusted smallest p < alpha."""
    paired = paired_cosine(reference, current)
    mmd2, mmd_p, sigma2 = mmd_test(reference, current, permutations, seed)
    distance, centroid_p = centroid_test(reference, current, permutations, seed)
    metrics = {
        "paired_cosine_mean": float(paired.mean()),
        "paired_cosine_p5": float(np.percentile(paired, 5)),
        "mmd2": mmd2,
        "mmd_p_value": mmd_p,
        "mmd_sigma2": sigma2,
        "centroid_distance": distance,
        "centroid_p_value": centroid_p,
        "classifier_auc": classifier_auc(reference, current, seed),
        "n_pairs": float(len(paired)),
    }
    p_values = {"MMD²": mmd_p, "centroid distance": centroid_p}
    if threshold is not None:
        below = int(np.sum(paired < threshold))
        share_p = stats.binomtest(below, len(paired), NOISE_QUANTILE, "greater").pvalue
        metrics |= {
            "cosine_threshold": threshold,
            "share_below_threshold": below / len(paired),
            "share_below_p_value": float(share_p),
        }
        p_values["share below calibrated cosine"] = float(share_p)
    name, smallest = min(p_values.items(), key=lambda kv: kv[1])
    adjusted = min(1.0, smallest * len(p_values))
    detected = adjusted < alpha
    verdict = "drift" if detected else "no drift"
    reason = (
        f"{verdict}: smallest p-value {smallest:.4g} ({name}), Bonferroni-adjusted over "
        f"{len(p_values)} tests to {adjusted:.4g} {'<' if detected else '≥'} α={alpha}; "
        f"mean paired cosine {metrics['paired_cosine_mean']:.3f}, "
        f"classifier AUC {metrics['classifier_auc']:.2f}"
    )
    if threshold is not None:
        reason += (
            f", {metrics['share_below_threshold']:.0%} of prompts below the calibrated "
            f"cosine {threshold:.3f} (expected ≤ {NOISE_QUANTILE:.0%})"
        )
    metrics |= {"p_value": adjusted, "detected": float(detected)}
    return DriftReport(detected, adjusted, reason, metrics, paired)

"""Tabular drift per column (Evidently's default rules, written with NumPy / SciPy)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

SMALL_REFERENCE = 1000  # at most this many reference rows: statistical tests, else distances
ALPHA = 0.05
DISTANCE_THRESHOLD = 0.1
PSI_BINS = 10
DATASET_SHARE = 0.5
MAX_DISCRETE_VALUES = 5  # numeric columns with this few distinct values count as categorical
_EPS = 1e-4
TEST_METHODS = frozenset({"ks", "z_two_proportions", "chi_square"})  # their statistic is a p-value


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict: which statistic, its value, the threshold and whether it drifted."""

    column: str
    kind: str
    method: str
    statistic: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int


def column_kind(reference: pd.Series) -> str:
    """'numeric' for numbers with more than a handful of values, else 'categorical'."""
    numeric = pd.api.types.is_numeric_dtype(reference) and not pd.api.types.is_bool_dtype(reference)
    return "numeric" if numeric and reference.nunique() > MAX_DISCRETE_VALUES else "categorical"


def _proportions(reference: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Category frequencies of both samples over the union of their categories."""
    ref, cur = reference.astype(str), current.astype(str)
    categories = sorted(set(ref.unique()) | set(cur.unique()))
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    return ref_counts, cur_counts


def two_proportion_z(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """p-value of the two-proportion z-test on the first of two categories."""
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1, p2 = ref_counts[0] / n1, cur_counts[0] / n2
    pooled = (ref_counts[0] + cur_counts[0]) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * stats.norm.sf(abs(p1 - p2) / se))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """p-value of the chi² test of homogeneity on the 2 × k contingency table."""
    keep = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[keep], cur_counts[keep]])
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table)[1])


def wasserstein_over_std(reference: np.ndarray, current: np.ndarray) -> float:
    """Earth mover's distance scaled by the reference's standard deviation."""
    std = float(np.std(reference))
    return float(stats.wasserstein_distance(reference, current)) / (std if std > 0 else _EPS)


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two frequency vectors."""
    return float(
        jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2)
    )


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index; empty bins are floored at a small share."""
    ref = np.clip(ref_counts / ref_counts.sum(), _EPS, None)
    cur = np.clip(cur_counts / cur_counts.sum(), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _numeric_bins(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the reference's quantile bins (open-ended at both ends)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    edges = np.r_[-np.inf, edges, np.inf]
    return (
        np.histogram(reference, edges)[0].astype(float),
        np.histogram(current, edges)[0].astype(float),
    )


def column_drift(
    name: str, reference: pd.Series, current: pd.Series, use_psi: bool = False
) -> ColumnDrift:
    """Test one column: KS / chi² / z for small references, distances above, or PSI."""
    reference, current = reference.dropna(), current.dropna()
    if reference.empty or current.empty:
        raise ValueError(f"column {name!r} has no values to compare")
    kind = column_kind(reference)
    small = len(reference) <= SMALL_REFERENCE
    if kind == "numeric":
        ref = reference.to_numpy(float)
        cur = pd.to_numeric(current, errors="raise").to_numpy(float)
        if use_psi:
            method, value = "psi", psi(*_numeric_bins(ref, cur))
        elif small:
            method, value = "ks", float(stats.ks_2samp(ref, cur).pvalue)
        else:
            method, value = "wasserstein_over_std", wasserstein_over_std(ref, cur)
    else:
        counts = _proportions(reference, current)
        if use_psi:
            method, value = "psi", psi(*counts)
        elif small and len(counts[0]) == 2:
            method, value = "z_two_proportions", two_proportion_z(*counts)
        elif small:
            method, value = "chi_square", chi_square(*counts)
        else:
            method, value = "jensen_shannon", jensen_shannon(*counts)
    is_test = method in TEST_METHODS
    threshold = ALPHA if is_test else DISTANCE_THRESHOLD
    drifted = value < threshold if is_test else value >= threshold
    return ColumnDrift(name, kind, method, value, threshold, drifted, len(reference), len(current))


@dataclass
class TableDrift:
    """Every feature's verdict, the label's, and the data-set verdict."""

    features: list[ColumnDrift]
    label: ColumnDrift | None

    @property
    def share_drifted(self) -> float:
        """Share of features that drifted."""
        return sum(c.drifted for c in self.features) / len(self.features)

    @property
    def dataset_drift(self) -> bool:
        """Drift of the data set: at least half of its features drifted."""
        return self.share_drifted >= DATASET_SHARE

    def frame(self) -> pd.DataFrame:
        """The per-column table (features, then the label)."""
        rows = [asdict(c) for c in self.features] + ([asdict(self.label)] if self.label else [])
        return pd.DataFrame(rows)


def table_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    label: str | None = "label",
    use_psi: bool = False,
) -> TableDrift:
    """Compare every feature of `reference` (and the label) with `current`."""
    features = [c for c in reference.columns if c != label]
    missing = [c for c in features if c not in current.columns]
    if missing:
        raise ValueError(f"the current data lacks the features {missing}")
    if not features:
        raise ValueError("the reference has no feature columns")
    results = [column_drift(c, reference[c], current[c], use_psi) for c in features]
    label_result = None
    if label is not None and label in reference.columns and label in current.columns:
        label_result = column_drift(label, reference[label], current[label], use_psi)
    return TableDrift(results, label_result)

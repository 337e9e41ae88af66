"""False-alarm rate and power of the tabular drift verdict, by simulation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.tabular_drift import ALPHA, MISSING, RESAMPLES, ReferenceColumn, categories
from eval.verdict import holm
from models.predictors.datasets import LABEL, load_split

Shift = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]
SIZES = (30, 60, 100, 300, 1000, 5000)


@dataclass(frozen=True)
class Rates:
    """Over `draws` samples of `n` rows: how often the data set, and each feature, was flagged."""

    n: int
    draws: int
    dataset: float  # share of draws with verdict drift (Holm over the features)
    features: dict[str, float]  # share of draws in which each feature drifted after Holm


def older(years: float = 5.0) -> Shift:
    """Every age + `years`."""
    return lambda frame, _: frame.assign(age=frame["age"] + years)


def workclass_mix(points: float = 0.2) -> Shift:
    """`points` of the workclass mix move from its commonest class to the others (∝ shares)."""

    def shift(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        names = categories(frame["workclass"])
        shares = names[names != "<missing>"].value_counts(normalize=True)
        top, others = shares.index[0], shares.iloc[1:]
        move = (names == top).to_numpy() & (rng.random(len(frame)) < points / shares.iloc[0])
        new = rng.choice(others.index.to_numpy(), size=int(move.sum()), p=others / others.sum())
        out = frame.copy()
        out.loc[move, "workclass"] = new
        return out

    return shift


def shorter_tenure(factor: float = 0.7) -> Shift:
    """Every churn tenure × `factor`."""
    return lambda frame, _: frame.assign(tenure=frame["tenure"] * factor)


def population(name: str) -> tuple[pd.DataFrame, int]:
    """All rows of a data set (training and held-out, features only) and its training size."""
    split = load_split(name)
    rows = pd.concat([split.train, split.test], ignore_index=True).drop(columns=LABEL)
    return rows, len(split.train)


@dataclass
class _PoolColumn:
    """A column of the pool encoded once, to build bootstrap references fast."""

    kind: str
    values: np.ndarray  # numeric: index into `atoms` (−1 missing); categorical: category codes
    atoms: np.ndarray  # numeric: the sorted distinct values
    names: list[str]  # categorical: category names

    @classmethod
    def build(cls, series: pd.Series, kind: str) -> _PoolColumn:
        if kind == "numeric":
            values = pd.to_numeric(series, errors="coerce").to_numpy(float)
            present = ~np.isnan(values)
            atoms, inverse = np.unique(values[present], return_inverse=True)
            index = np.full(len(values), -1)
            index[present] = inverse
            return cls(kind, index, atoms, [])
        codes, names = pd.factorize(categories(series))
        return cls(kind, codes, np.empty(0), list(names))

    def reference(self, name: str, rows: np.ndarray) -> ReferenceColumn:
        """The prepared reference column of the pool rows `rows`."""
        picked = self.values[rows]
        if self.kind == "numeric":
            counts = np.bincount(picked[picked >= 0], minlength=len(self.atoms))
            missing = int((picked < 0).sum())
            sorted_values = np.repeat(self.atoms, counts)
            return ReferenceColumn(
                name, "numeric", sorted_values, missing, [], np.array([len(sorted_values), missing])
            )
        counts = np.bincount(picked, minlength=len(self.names))
        missing = counts[self.names.index(MISSING)] if MISSING in self.names else 0
        return ReferenceColumn(name, "categorical", np.empty(0), int(missing), self.names, counts)

    def current(self, rows: np.ndarray) -> np.ndarray:
        """The pool rows `rows`, encoded as ReferenceColumn.test_batch takes them."""
        picked = self.values[rows]
        if self.kind == "numeric":
            return np.where(picked >= 0, self.atoms[np.maximum(picked, 0)], np.nan)
        return picked


def simulate(
    pool: pd.DataFrame,
    reference_rows: int,
    n: int,
    draws: int,
    seed: int = 0,
    shift: Shift | None = None,
    alpha: float = ALPHA,
    resamples: int = RESAMPLES,
) -> Rates:
    """Draw a reference of `reference_rows` and a current sample of `n` rows, independently and
    with replacement, from `pool` (the current from the shifted pool, if asked); test; repeat.

    Both samples are then independent draws of one distribution (the pool's), so without a shift
    every rejection is a false alarm, at any n, even for n larger than the data set.
    """
    rng = np.random.default_rng(seed)
    kinds = {c: ReferenceColumn.build(c, pool[c]).kind for c in pool.columns}
    shifted = shift(pool, rng) if shift is not None else pool
    before = {c: _PoolColumn.build(pool[c], kinds[c]) for c in pool.columns}
    after = (
        before
        if shift is None
        else {c: _PoolColumn.build(shifted[c], kinds[c]) for c in pool.columns}
    )
    p = np.empty((draws, len(pool.columns)))
    for b in range(draws):
        ref_rows = rng.integers(0, len(pool), reference_rows)
        cur_rows = rng.integers(0, len(pool), n)
        for j, name in enumerate(pool.columns):
            column = before[name].reference(name, ref_rows)
            current = after[name].current(cur_rows)
            if column.kind == "categorical":  # codes of the shifted pool → codes of the reference
                current = _recode(after[name].names, column.categories, current)
            p[b, j] = column.test_batch(current[None, :], rng, resamples)[1][0]
    flagged = holm(p) <= alpha
    return Rates(
        n,
        draws,
        float(flagged.any(axis=1).mean()),
        {c: float(flagged[:, j].mean()) for j, c in enumerate(pool.columns)},
    )


def _recode(source: list[str], target: list[str], codes: np.ndarray) -> np.ndarray:
    """Codes over `source` names as codes over `target` names (unknown names after the known)."""
    index = {name: i for i, name in enumerate(target)}
    extra = [name for name in source if name not in index]
    index |= {name: len(target) + i for i, name in enumerate(extra)}
    return np.array([index[name] for name in source], dtype=np.int64)[codes]

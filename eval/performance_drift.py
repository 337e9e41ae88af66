"""Performance (concept) drift: the labelled live window against the champion's held-out split.

Accuracy: Fisher's exact test of correct/wrong counts, Wilson 95 % intervals. Calibration: the
multi-class Brier score per row, Welch's t-test of its mean, normal 95 % intervals. ROC-AUC (binary
predictors): a seeded bootstrap 95 % interval, reported, not tested. Both tests join the one Holm
family of the drift verdict. Fewer than MIN_LABELLED labelled rows: the part is insufficient_data.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from eval.verdict import INSUFFICIENT, Check
from models.predictors.datasets import LABEL, load_split
from models.predictors.registry import Predictor, PredictorRegistry

log = logging.getLogger(__name__)

MIN_LABELLED = 30  # fewer labelled live rows: the performance part is insufficient_data
BOOTSTRAP = 1000


@dataclass
class Scored:
    """Predicted labels, class probabilities (NaN when unknown) and true labels of some rows."""

    predicted: list[str]
    probabilities: np.ndarray  # rows × classes
    truth: list[str]
    classes: list[str]

    @property
    def correct(self) -> np.ndarray:
        """Whether each prediction was right."""
        return np.array([p == t for p, t in zip(self.predicted, self.truth, strict=True)])

    def brier(self) -> np.ndarray:
        """Multi-class Brier score per row with all probabilities known."""
        onehot = np.array([[float(t == c) for c in self.classes] for t in self.truth])
        known = ~np.isnan(self.probabilities).any(axis=1)
        return np.asarray(((self.probabilities - onehot) ** 2).sum(axis=1)[known])

    def auc(self, seed: int) -> dict[str, float] | None:
        """Binary ROC-AUC with a bootstrap 95 % interval, or None when not defined."""
        if len(self.classes) != 2:
            return None
        known = ~np.isnan(self.probabilities).any(axis=1)
        y = np.array([t == self.classes[1] for t in self.truth])[known]
        score = self.probabilities[known, 1]
        if len(set(y.tolist())) < 2:
            return None
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, len(y), len(y))
            if len(set(y[pick].tolist())) == 2:
                draws.append(roc_auc_score(y[pick], score[pick]))
        low, high = np.quantile(draws, [0.025, 0.975])
        return {"value": float(roc_auc_score(y, score)), "ci_low": low, "ci_high": high}


@dataclass
class Performance:
    """The performance part: its tests, the figures for the report, or why it was not tested."""

    checks: list[Check] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def _wilson(correct: np.ndarray) -> dict[str, float]:
    interval = stats.binomtest(int(correct.sum()), len(correct)).proportion_ci(method="wilson")
    return {
        "value": float(correct.mean()),
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
    }


def _mean_ci(values: np.ndarray) -> dict[str, float]:
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else np.nan
    mean = float(values.mean())
    return {"value": mean, "ci_low": mean - half, "ci_high": mean + half}


def reference_scores(predictor: Predictor) -> Scored:
    """The champion on its held-out split (rows it never saw: an honest reference)."""
    test = load_split(predictor.name).test
    records = json.loads(test.drop(columns=LABEL).to_json(orient="records"))
    outputs = predictor.predict(records)
    return Scored(
        [str(o["label"]) for o in outputs],
        np.array([[o["probabilities"][c] for c in predictor.classes] for o in outputs]),
        [str(v) for v in test[LABEL]],
        predictor.classes,
    )


def live_scores(labelled: pd.DataFrame, classes: list[str]) -> Scored:
    """The labelled live window (probabilities from the log, NaN where not logged)."""
    probabilities = []
    for text in labelled["probabilities"]:
        given = json.loads(text)
        probabilities.append([float(given.get(c, np.nan)) for c in classes])
    return Scored(
        [str(v) for v in labelled["label"]],
        np.array(probabilities, dtype=float).reshape(len(labelled), len(classes)),
        [str(v) for v in labelled["truth"]],
        classes,
    )


def champion(tracking_uri: str, name: str) -> Predictor | None:
    """The MLflow champion of this predictor, or None."""
    registry = PredictorRegistry.load(tracking_uri, predictors_dir=_NO_ARTEFACTS)
    return registry.predictors.get(name)


_NO_ARTEFACTS = Path("/nonexistent-predictors-dir")  # the champion comes from MLflow only


def performance(labelled: pd.DataFrame, predictor: Predictor | None, seed: int) -> Performance:
    """Accuracy and Brier tests of the live labelled rows against the held-out reference."""
    if len(labelled) < MIN_LABELLED:
        reason = (
            f"{len(labelled)} predictions with feedback (POST /v1/predict/{{name}}/feedback); "
            f"at least {MIN_LABELLED} are needed"
        )
        return Performance(summary={"verdict": INSUFFICIENT, "reason": reason}, skipped=reason)
    if predictor is None:
        reason = "no MLflow champion to score the held-out split with"
        return Performance(summary={"verdict": INSUFFICIENT, "reason": reason}, skipped=reason)
    reference = reference_scores(predictor)
    live = live_scores(labelled, predictor.classes)
    ref_ok, live_ok = reference.correct, live.correct
    table = [
        [int(ref_ok.sum()), int((~ref_ok).sum())],
        [int(live_ok.sum()), int((~live_ok).sum())],
    ]
    _, p_accuracy = stats.fisher_exact(table)
    accuracy = {"reference": _wilson(ref_ok), "live": _wilson(live_ok)}
    checks = [
        Check(
            "performance",
            "accuracy",
            "fisher_exact",
            accuracy["live"]["value"] - accuracy["reference"]["value"],
            float(p_accuracy),
            len(ref_ok),
            len(live_ok),
            {
                "statistic": "live − reference accuracy",
                **{f"accuracy_{k}": v for k, v in accuracy.items()},
            },
        )
    ]
    summary: dict[str, Any] = {"accuracy": accuracy, "min_labelled": MIN_LABELLED}
    ref_brier, live_brier = reference.brier(), live.brier()
    if len(live_brier) >= MIN_LABELLED:
        welch = stats.ttest_ind(live_brier, ref_brier, equal_var=False)
        brier = {"reference": _mean_ci(ref_brier), "live": _mean_ci(live_brier)}
        summary["brier"] = brier
        checks.append(
            Check(
                "performance",
                "brier",
                "welch_t",
                brier["live"]["value"] - brier["reference"]["value"],
                float(welch.pvalue),
                len(ref_brier),
                len(live_brier),
                {
                    "statistic": "live − reference mean Brier",
                    **{f"brier_{k}": v for k, v in brier.items()},
                },
            )
        )
    auc = {"reference": reference.auc(seed), "live": live.auc(seed)}
    if auc["live"] is not None:
        summary["roc_auc"] = auc
        checks[0].details["roc_auc"] = auc
    return Performance(checks, summary)

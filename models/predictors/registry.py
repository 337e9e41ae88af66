"""The servable predictors: their names, and loading each champion (MLflow) or trained artefact."""

from __future__ import annotations

PREDICTOR_NAMES: tuple[str, ...] = ("iris", "income", "churn")

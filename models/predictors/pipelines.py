"""One scikit-learn Pipeline (ColumnTransformer + model) per predictor; seconds to train."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from models.predictors.datasets import SEED
from models.predictors.schema import categorical_features, numeric_features


def _linear(schema: dict[str, Any], c: float) -> Pipeline:
    """Scaled numbers + one-hot categories → logistic regression."""
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    prep = ColumnTransformer(
        [
            ("numeric", numeric, numeric_features(schema)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical_features(schema)),
        ]
    )
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=c, max_iter=2000))])


def _boosted(schema: dict[str, Any]) -> Pipeline:
    """Ordinal-coded categories (missing kept as NaN) + numbers → histogram gradient boosting."""
    categorical = categorical_features(schema)
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    prep = ColumnTransformer(
        [
            ("categorical", encoder, categorical),
            ("numeric", "passthrough", numeric_features(schema)),
        ]
    )
    model = HistGradientBoostingClassifier(
        categorical_features=list(range(len(categorical))),
        learning_rate=0.2,
        max_iter=100,
        early_stopping=False,
        random_state=SEED,
    )
    return Pipeline([("prep", prep), ("model", model)])


def build_pipeline(name: str, schema: dict[str, Any]) -> Pipeline:
    """The untrained pipeline for one predictor."""
    if name == "income":
        return _boosted(schema)
    return _linear(schema, c=10.0 if name == "iris" else 1.0)

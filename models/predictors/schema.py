"""Input schemas learned from the training data (JSON Schema) and validation of incoming records."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from models.errors import ModelError
from models.predictors.datasets import LABEL

MAX_RECORDS = 10_000


class InvalidInput(ModelError, ValueError):
    """A record does not match the predictor's input schema."""

    code = "invalid_value"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def _plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value JSON needs."""
    return value.item() if hasattr(value, "item") else value


def _feature_schema(column: pd.Series) -> dict[str, Any]:
    """One feature's JSON Schema: a string enum, or a number/integer with a plausible range.

    The range is the training range widened by its own span on each side (never below 0 for a
    feature that was never negative): absurd values are refused, unseen but sane ones are not.
    A feature with missing values in training is `nullable` (OpenAPI's keyword): null is then
    accepted and reaches the pipeline as NaN, imputed as in training. `default` is the training
    mode (categories) or median (numbers): where a form starts.
    """
    values = column.dropna()
    nullable = {"nullable": True} if len(values) < len(column) else {}
    if not pd.api.types.is_numeric_dtype(column):
        enum = sorted(str(v) for v in values.unique())
        mode = str(values.astype(str).mode().iloc[0]) if len(values) else None
        return {"type": "string", "enum": enum, "default": mode, **nullable}
    kind = "integer" if pd.api.types.is_integer_dtype(column) else "number"
    low, high = _plain(values.min()), _plain(values.max())
    median = _plain(values.median()) if len(values) else None
    if kind == "integer" and {low, high} <= {0, 1}:
        mode01 = int(values.mode().iloc[0]) if len(values) else None
        return {
            "type": kind,
            "minimum": 0,
            "maximum": 1,
            "enum": [0, 1],
            "default": mode01,
            **nullable,
        }
    span = high - low
    minimum = max(low - span, 0) if low >= 0 else low - span
    return {
        "type": kind,
        "minimum": minimum if kind == "integer" else round(minimum, 6),
        "maximum": high + span if kind == "integer" else round(high + span, 6),
        "description": f"seen in training: {low} to {high}",
        "default": round(median) if kind == "integer" and median is not None else median,
        **nullable,
    }


def input_schema(train: pd.DataFrame) -> dict[str, Any]:
    """The JSON Schema of one input record, learned from the training frame."""
    features = [c for c in train.columns if c != LABEL]
    return {
        "type": "object",
        "properties": {name: _feature_schema(train[name]) for name in features},
        "required": features,
        "additionalProperties": False,
    }


def categorical_features(schema: dict[str, Any]) -> list[str]:
    """The string-valued features."""
    return [n for n, s in schema["properties"].items() if s["type"] == "string"]


def numeric_features(schema: dict[str, Any]) -> list[str]:
    """The number- and integer-valued features."""
    return [n for n, s in schema["properties"].items() if s["type"] != "string"]


def _check_value(value: Any, spec: dict[str, Any], param: str) -> Any:
    """The value if it fits the feature's schema, else InvalidInput naming the field."""
    if value is None:
        if spec.get("nullable"):
            return None
        raise InvalidInput(
            f"{param}: null is not allowed (this feature had no missing values in training)",
            param,
        )
    if spec["type"] == "string":
        if not isinstance(value, str) or value not in spec["enum"]:
            allowed = ", ".join(repr(v) for v in spec["enum"])
            message = f"{param}: {value!r} is not one of the allowed values: {allowed}"
            raise InvalidInput(message, param)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{param}: expected a {spec['type']}, got {value!r}", param)
    if spec["type"] == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise InvalidInput(f"{param}: expected an integer, got {value!r}", param)
        value = int(value)
    if "enum" in spec and value not in spec["enum"]:
        raise InvalidInput(f"{param}: {value!r} is not one of {spec['enum']}", param)
    if not spec["minimum"] <= value <= spec["maximum"]:
        raise InvalidInput(
            f"{param}: {value!r} is outside the allowed range "
            f"[{spec['minimum']}, {spec['maximum']}]",
            param,
        )
    return value


def validate_records(schema: dict[str, Any], records: list[Any]) -> list[dict[str, Any]]:
    """The records, checked and converted, or InvalidInput naming the first bad field."""
    if not records:
        raise InvalidInput("inputs: give at least one record", "inputs")
    if len(records) > MAX_RECORDS:
        raise InvalidInput(f"inputs: at most {MAX_RECORDS} records per request", "inputs")
    properties: dict[str, dict[str, Any]] = schema["properties"]
    clean = []
    for i, record in enumerate(records):
        where = f"inputs[{i}]"
        if not isinstance(record, dict):
            raise InvalidInput(f"{where}: expected an object of features", where)
        unknown = sorted(set(record) - set(properties))
        if unknown:
            expected = ", ".join(properties)
            raise InvalidInput(
                f"{where}.{unknown[0]}: unknown feature; expected: {expected}",
                f"{where}.{unknown[0]}",
            )
        missing = [name for name in properties if name not in record]
        if missing:
            raise InvalidInput(f"{where}.{missing[0]}: missing feature", f"{where}.{missing[0]}")
        clean.append({n: _check_value(record[n], s, f"{where}.{n}") for n, s in properties.items()})
    return clean


def to_frame(schema: dict[str, Any], records: list[dict[str, Any]]) -> pd.DataFrame:
    """Validated records as the frame the pipeline was trained on (null → NaN, as in training)."""
    frame = pd.DataFrame.from_records(records, columns=list(schema["properties"]))
    for name, spec in schema["properties"].items():
        column = frame[name]
        if spec["type"] == "string":
            frame[name] = column.astype(object).where(column.notna(), np.nan)
        elif spec["type"] == "number" or column.isna().any():
            frame[name] = column.astype("float64")
    return frame

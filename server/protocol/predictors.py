"""Predictor requests: records to score and true labels for served predictions."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from server.protocol.common import StrictRequest

MAX_INPUTS = 2048
MAX_FEEDBACK = 1000


class PredictRequest(StrictRequest):
    """A batch of records to score; each record is checked against the predictor's schema."""

    inputs: list[Any] = Field(description="One object of features per record.")


class FeedbackItem(StrictRequest):
    """The true label of one served prediction."""

    id: str = Field(min_length=1, max_length=64, description="predictions[i].id as served.")
    label: str = Field(description="The true class; one of the predictor's classes.")


class FeedbackRequest(StrictRequest):
    """POST /v1/predict/{name}/feedback: true labels for served predictions (all or none stored)."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK)

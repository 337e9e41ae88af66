"""Registry look-ups that need no trained model: the 404 messages."""

from __future__ import annotations

import pytest

from models.errors import ModelNotFound
from models.predictors.registry import PredictorRegistry


def test_disabled_and_unknown_predictors_say_why() -> None:
    """--no-load-predictors and unknown names both raise ModelNotFound with a useful message."""
    registry = PredictorRegistry.disabled()
    assert registry.cards() == []
    with pytest.raises(ModelNotFound, match="--no-load-predictors"):
        registry.get("iris")
    with pytest.raises(ModelNotFound, match="iris, income, churn"):
        registry.get("titanic")
    with pytest.raises(ModelNotFound, match="myllama train income"):
        PredictorRegistry({}).get("income")

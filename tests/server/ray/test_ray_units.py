"""The Ray path's pure parts: settings, error unwrapping, counters summed over replicas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.engine.base import EngineStats
from models.errors import ContextLengthExceeded, InvalidRequest, QueueFull
from server.ray.engine_proxy import _sum_stats, model_error
from server.ray.settings import RaySettings


def test_replicas_or_autoscaling_bounds_not_both() -> None:
    """--replicas fixes the count; --min/--max-replicas autoscale; both at once is refused."""
    assert RaySettings().replica_range() == (1, 1)
    assert RaySettings(replicas=3).replica_range() == (3, 3)
    assert RaySettings(max_replicas=4).replica_range() == (1, 4)
    assert RaySettings(min_replicas=2, max_replicas=2).autoscaling
    with pytest.raises(ValidationError, match="not both"):
        RaySettings(replicas=2, max_replicas=3)
    with pytest.raises(ValidationError, match="above max_replicas"):
        RaySettings(min_replicas=3, max_replicas=2)


def test_flags_and_environment_name_the_same_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--ray`/`--ray-address` fill the fields by name; MYLLAMA_RAY/MYLLAMA_RAY_ADDRESS too."""
    assert RaySettings(ray=True, ray_address="10.0.0.5:6379").ray_address == "10.0.0.5:6379"
    monkeypatch.setenv("MYLLAMA_RAY", "1")
    monkeypatch.setenv("MYLLAMA_RAY_MAX_REPLICAS", "3")
    from_env = RaySettings()
    assert from_env.ray and from_env.replica_range() == (1, 3)


class _RayTaskError(Exception):
    """Shaped like ray.exceptions.RayTaskError: the replica's exception as `cause`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("task failed")
        self.cause = cause


def test_replica_errors_come_back_as_the_same_class() -> None:
    """The engine's error inside a Ray error is found with its fields (param, retry_after)."""
    refused = InvalidRequest("bad grammar", "response_format")
    found = model_error(_RayTaskError(refused))
    assert found is refused and found.param == "response_format"
    busy = QueueFull("busy", retry_after=3)
    wrapped = RuntimeError("outer")
    wrapped.__cause__ = _RayTaskError(busy)
    assert model_error(wrapped) is busy
    assert isinstance(model_error(ContextLengthExceeded("long")), ContextLengthExceeded)
    assert model_error(RuntimeError("the actor died")) is None


def test_counters_add_up_over_replicas() -> None:
    """Gauges and counters are summed, finish reasons merged."""
    a = EngineStats(running=2, generated_tokens=10, requests_finished={"stop": 1})
    b = EngineStats(running=1, generated_tokens=5, requests_finished={"stop": 2, "cancelled": 1})
    total = _sum_stats([{"stats": a}, {"stats": b}])
    assert (total.running, total.generated_tokens) == (3, 15)
    assert total.requests_finished == {"stop": 3, "cancelled": 1}

"""/metrics of a real server after real traffic: standard, HTTP, generation, predictor metrics."""

from __future__ import annotations

import pytest
from prometheus_client.samples import Sample

from tests.server.metrics_server import Monitored


@pytest.fixture
def samples(monitored: Monitored) -> list[Sample]:
    """The scrape taken right after drive_traffic()."""
    return monitored.samples


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    """The values of every sample of this name whose labels include these."""
    return [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]


def test_process_platform_and_gc_collectors(samples: list[Sample]) -> None:
    """The standard collectors are registered on the app's own registry."""
    names = {s.name for s in samples}
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert name in names, name
    assert values(samples, "process_resident_memory_bytes")[0] > 0


def test_http_requests_by_route_template_method_and_status(samples: list[Sample]) -> None:
    """Routes are templates, never raw paths; 401s, 404s and 400s are counted with their route."""
    count = "myllama_http_requests_total"
    assert values(samples, count, route="/v1/predict/{name}", method="POST", status="200") == [1]
    assert values(samples, count, route="/v1/predict/{name}", method="POST", status="400") == [1]
    assert values(samples, count, route="/v1/predict/{name}", method="POST", status="404") == [1]
    assert values(samples, count, route="/v1/models", method="GET", status="401") == [1]
    assert values(samples, count, route="unmatched", method="GET", status="404") == [1]
    chat = values(samples, count, route="/v1/chat/completions", method="POST", status="200")
    assert chat == [2]
    routes = {s.labels["route"] for s in samples if s.name == count}
    assert not any("iris" in r or "nope" in r or "12345" in r for r in routes), routes
    latency = "myllama_http_request_duration_seconds_count"
    assert values(samples, latency, route="/v1/predict/{name}", method="POST") == [3]


def test_queue_time_inter_token_and_decode_steps(samples: list[Sample]) -> None:
    """Every choice's queue time is observed; the stream's gaps; tokens per decode step."""
    assert values(samples, "myllama_request_queue_time_seconds_count") == [3]  # 1 + n=2
    assert values(samples, "myllama_inter_token_latency_seconds_count")[0] > 0
    steps = values(samples, "myllama_decode_steps_total")[0]
    tokens = values(samples, "myllama_decode_step_tokens_total")[0]
    generated = values(samples, "myllama_generated_tokens_total")[0]
    assert 0 < steps <= tokens
    assert tokens >= generated  # every generated token went through a decode step
    assert values(samples, "myllama_engine_stalled") == [0]
    assert values(samples, "myllama_queue_capacity") == [8]


def test_predictor_requests_latency_and_classes(samples: list[Sample]) -> None:
    """One good call of three records, one invalid call; classes sum to the records scored."""
    assert values(samples, "myllama_predictor_requests_total", predictor="iris", outcome="ok") == [
        1
    ]
    invalid = values(samples, "myllama_predictor_requests_total", outcome="invalid")
    assert invalid == [1]
    assert values(samples, "myllama_predictor_latency_seconds_count", predictor="iris") == [1]
    classes = values(samples, "myllama_predictions_total", predictor="iris")
    assert sum(classes) == 3
    labels = {s.labels["label"] for s in samples if s.name == "myllama_predictions_total"}
    assert labels <= {"setosa", "versicolor", "virginica"}, labels

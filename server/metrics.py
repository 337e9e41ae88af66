"""Prometheus metrics: request timings observed by the server, engine gauges read at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from models.engine import Engine

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_TOKEN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1)


class EngineCollector(Collector):
    """Reads every engine's counters and gauges when Prometheus scrapes."""

    def __init__(self, engines: Callable[[], list[Engine]]) -> None:
        self._engines = engines

    def collect(self) -> Iterable[Metric]:
        """Yield one family per statistic, labelled by model."""
        gauges: dict[str, GaugeMetricFamily] = {
            "running": GaugeMetricFamily(
                "myllama_requests_running", "Requests decoding now", labels=["model"]
            ),
            "waiting": GaugeMetricFamily(
                "myllama_requests_waiting", "Requests waiting for a slot", labels=["model"]
            ),
            "kv_cells_used": GaugeMetricFamily(
                "myllama_kv_cells_used", "KV cache cells held by running requests", labels=["model"]
            ),
            "kv_cells_total": GaugeMetricFamily(
                "myllama_kv_cells_total", "KV cache cells available", labels=["model"]
            ),
        }
        counters: dict[str, CounterMetricFamily] = {
            "prompt_tokens": CounterMetricFamily(
                "myllama_prompt_tokens", "Prompt tokens admitted", labels=["model"]
            ),
            "cached_prompt_tokens": CounterMetricFamily(
                "myllama_prompt_tokens_cached",
                "Prompt tokens reused from the KV cache",
                labels=["model"],
            ),
            "generated_tokens": CounterMetricFamily(
                "myllama_generated_tokens", "Tokens generated", labels=["model"]
            ),
            "rejected": CounterMetricFamily(
                "myllama_requests_rejected",
                "Requests refused because the queue was full",
                labels=["model"],
            ),
        }
        finished = CounterMetricFamily(
            "myllama_requests_finished", "Requests ended, by reason", labels=["model", "reason"]
        )
        for engine in self._engines():
            stats = engine.stats()
            for name, family in gauges.items():
                family.add_metric([engine.model_id], getattr(stats, name))
            for name, counter in counters.items():
                counter.add_metric([engine.model_id], getattr(stats, name))
            for reason, count in stats.requests_finished.items():
                finished.add_metric([engine.model_id, reason], count)
        yield from gauges.values()
        yield from counters.values()
        yield finished


class Metrics:
    """The app's own registry with the timings the HTTP layer measures."""

    def __init__(self, engines: Callable[[], list[Engine]]) -> None:
        self.registry = CollectorRegistry()
        self.ttft = Histogram(
            "myllama_time_to_first_token_seconds",
            "Request received to first token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tpot = Histogram(
            "myllama_time_per_output_token_seconds",
            "Mean gap between output tokens",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            "myllama_request_duration_seconds",
            "Request received to last token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(EngineCollector(engines))

"""Prometheus metrics: request timings observed by the server, engine gauges read at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from models.engine import Engine

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_TOKEN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1)
_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
_PREDICT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class EngineCollector(Collector):
    """Reads every engine's counters and gauges when Prometheus scrapes."""

    def __init__(self, engines: Callable[[], list[Engine]], watchdog_s: float = 60.0) -> None:
        self._engines = engines
        self._watchdog_s = watchdog_s

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
                "myllama_kv_cells_total", "KV cache cells shared by all slots", labels=["model"]
            ),
            "host_cache_bytes": GaugeMetricFamily(
                "myllama_host_cache_bytes",
                "Host RAM held by the prompt cache of finished requests",
                labels=["model"],
            ),
            "host_cache_entries": GaugeMetricFamily(
                "myllama_host_cache_entries", "Sequences in the host prompt cache", labels=["model"]
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
            "decode_steps": CounterMetricFamily(
                "myllama_decode_steps",
                "Decode steps (one llama_decode batch each)",
                labels=["model"],
            ),
            "decode_tokens": CounterMetricFamily(
                "myllama_decode_step_tokens",
                "Tokens decoded in those steps (generated and prefilled); "
                "rate(this) / rate(myllama_decode_steps_total) is tokens per step",
                labels=["model"],
            ),
            "shared_prefix_tokens": CounterMetricFamily(
                "myllama_prompt_tokens_shared",
                "Prompt tokens whose KV cells another slot shared (cross-slot prefix reuse)",
                labels=["model"],
            ),
            "host_cache_tokens": CounterMetricFamily(
                "myllama_prompt_tokens_host_cache",
                "Prompt tokens restored from the host-RAM prompt cache",
                labels=["model"],
            ),
            "moved_sequences": CounterMetricFamily(
                "myllama_sequences_moved",
                "Running requests moved to another slot to keep the running slots consecutive "
                "(llama.cpp decodes each run of consecutive slots of a split cache separately)",
                labels=["model"],
            ),
            "drafted_tokens": CounterMetricFamily(
                "myllama_draft_tokens", "Prompt-lookup draft tokens verified", labels=["model"]
            ),
            "accepted_tokens": CounterMetricFamily(
                "myllama_draft_tokens_accepted",
                "Draft tokens the model agreed with (accepted / drafted is the acceptance rate)",
                labels=["model"],
            ),
        }
        finished = CounterMetricFamily(
            "myllama_requests_finished", "Requests ended, by reason", labels=["model", "reason"]
        )
        capacity = GaugeMetricFamily(
            "myllama_queue_capacity", "Requests that may wait for a slot", labels=["model"]
        )
        stalled = GaugeMetricFamily(
            "myllama_engine_stalled_seconds",
            "Seconds the engine made no progress while work was pending (0 when healthy)",
            labels=["model"],
        )
        stalled_flag = GaugeMetricFamily(
            "myllama_engine_stalled",
            "1 while the engine is past its watchdog (readiness is red), else 0",
            labels=["model"],
        )
        for engine in self._engines():
            stats = engine.stats()
            model = [engine.model_id]
            for name, family in gauges.items():
                family.add_metric(model, getattr(stats, name))
            for name, counter in counters.items():
                counter.add_metric(model, getattr(stats, name))
            for reason, count in stats.requests_finished.items():
                finished.add_metric([engine.model_id, reason], count)
            capacity.add_metric(model, float(engine.info().get("max_queue", 0)))
            seconds = engine.stalled_for()
            stalled.add_metric(model, seconds)
            stalled_flag.add_metric(model, float(seconds > self._watchdog_s))
        yield from gauges.values()
        yield from counters.values()
        yield from (finished, capacity, stalled, stalled_flag)


class Metrics:
    """The app's own registry: process/platform/GC, HTTP, generation and predictor timings."""

    def __init__(self, engines: Callable[[], list[Engine]], watchdog_s: float = 60.0) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
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
        self.itl = Histogram(
            "myllama_inter_token_latency_seconds",
            "Every gap between consecutive streamed pieces of one choice",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "myllama_request_queue_time_seconds",
            "Submitted to admitted into a decoding slot",
            ["model"],
            buckets=_QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.e2e = Histogram(
            "myllama_request_duration_seconds",
            "Request received to last token",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "myllama_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "myllama_http_request_duration_seconds",
            "Request received to the last byte of the answer, by route template and method",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictor_requests = Counter(
            "myllama_predictor_requests",
            "Predict calls by predictor and outcome (ok, invalid, log_full)",
            ["predictor", "outcome"],
            registry=self.registry,
        )
        self.predictor_latency = Histogram(
            "myllama_predictor_latency_seconds",
            "Time to validate and score one predict call",
            ["predictor"],
            buckets=_PREDICT_BUCKETS,
            registry=self.registry,
        )
        self.predicted_class = Counter(
            "myllama_predictions",
            "Records scored, by predictor and predicted class",
            ["predictor", "label"],
            registry=self.registry,
        )
        self.registry.register(EngineCollector(engines, watchdog_s))

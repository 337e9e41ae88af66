"""Live-drift verdicts on /metrics: the latest `myllama eval drift` run of each target in MLflow.

Scrapes never wait for MLflow: a background thread refreshes the verdicts at most once per
interval, and /metrics shows what it last read (nothing until the first read finishes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

VERDICTS = ("drift", "no_drift", "insufficient_data")
REFRESH_S = 60.0


@dataclass(frozen=True)
class DriftVerdict:
    """The latest verdict for one target (a predictor, or `llm`)."""

    target: str
    verdict: str
    checked_at: float  # unix seconds of the run's start


def read_verdicts(tracking_uri: str, experiment: str) -> list[DriftVerdict]:
    """The newest drift run per target in the experiment (none if it does not exist)."""
    from mlflow.tracking import MlflowClient  # MLflow loads only when drift metrics are on

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="tags.`drift.verdict` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    latest: dict[str, DriftVerdict] = {}
    for run in runs:
        tags = run.data.tags
        target = tags.get("predictor") or "llm"
        if target not in latest:
            latest[target] = DriftVerdict(
                target, tags["drift.verdict"], run.info.start_time / 1000.0
            )
    return list(latest.values())


class DriftVerdicts:
    """A Prometheus collector of the latest drift verdicts, refreshed off the request path."""

    def __init__(self, tracking_uri: str, experiment: str, refresh_s: float = REFRESH_S) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.refresh_s = refresh_s
        self._verdicts: list[DriftVerdict] = []
        self._read_at = -refresh_s
        self._reading = threading.Lock()
        self.loaded = threading.Event()  # set once the first read has finished

    def _refresh(self) -> None:
        try:
            self._verdicts = read_verdicts(self.tracking_uri, self.experiment)
        except Exception:
            log.warning("could not read drift verdicts from %s", self.tracking_uri, exc_info=True)
        finally:
            self._reading.release()
            self.loaded.set()

    def collect(self) -> Iterable[Metric]:
        """One gauge per target and verdict (1 for the latest), and when it was checked."""
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s and self._reading.acquire(blocking=False):
            self._read_at = now
            threading.Thread(target=self._refresh, name="drift-verdicts", daemon=True).start()
        verdict = GaugeMetricFamily(
            "myllama_drift_verdict",
            "Latest `myllama eval drift` verdict per target (1 on the verdict given)",
            labels=["target", "verdict"],
        )
        checked = GaugeMetricFamily(
            "myllama_drift_checked_timestamp_seconds",
            "When the latest drift check of each target ran (unix time)",
            labels=["target"],
        )
        for found in self._verdicts:
            for name in VERDICTS:
                verdict.add_metric([found.target, name], float(found.verdict == name))
            checked.add_metric([found.target], found.checked_at)
        yield verdict
        yield checked

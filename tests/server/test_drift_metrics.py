"""Live-drift verdicts on /metrics, read from a real MLflow store (the engine is a fake)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.settings import ServerSettings
from tests.server.serving.fake_engine import FakeEngine


def _verdicts(client: TestClient) -> dict[tuple[str, str], float]:
    samples = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "myllama_drift_verdict":
                samples[(sample.labels["target"], sample.labels["verdict"])] = sample.value
    return samples


def test_latest_verdict_per_target_is_exported(tmp_path: Path) -> None:
    """The newest drift run of each target wins; every verdict value is there as 0 or 1."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    store = MlflowClient(uri)
    experiment = store.create_experiment("myllama-drift")
    for start, predictor, verdict in [
        (1_000_000, "iris", "no_drift"),
        (2_000_000, "iris", "drift"),
        (1_500_000, None, "insufficient_data"),
    ]:
        tags = {"drift.verdict": verdict, **({"predictor": predictor} if predictor else {})}
        run = store.create_run(experiment, start_time=start, tags=tags)
        store.set_terminated(run.info.run_id)
    store.create_run(experiment, tags={"note": "not a drift run"})
    settings = ServerSettings(
        tracking_uri=uri,
        load_predictors=False,
        prediction_log=tmp_path / "p.db",
        log_level="warning",
    )
    app = create_app(settings, engine_factory=FakeEngine)
    with TestClient(app) as client:
        client.get("/metrics")  # the first scrape starts the background read
        assert app.state.drift_verdicts.loaded.wait(60)
        found = _verdicts(client)
    assert found[("iris", "drift")] == 1 and found[("iris", "no_drift")] == 0
    assert found[("llm", "insufficient_data")] == 1 and found[("llm", "drift")] == 0
    assert {target for target, _ in found} == {"iris", "llm"}


def test_no_store_no_verdicts_and_no_error(tmp_path: Path) -> None:
    """Without drift runs /metrics simply has no verdict samples."""
    settings = ServerSettings(
        tracking_uri=f"sqlite:///{tmp_path}/empty.db",
        load_predictors=False,
        prediction_log=tmp_path / "p.db",
        log_level="warning",
    )
    app = create_app(settings, engine_factory=FakeEngine)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 200
        assert app.state.drift_verdicts.loaded.wait(60)
        assert _verdicts(client) == {}

"""deploy/monitoring: promtool checks the config and the rules and runs the alert unit tests;
the dashboard loads and fits its provisioning; compose's monitoring profile mounts them."""

from __future__ import annotations

import json
import subprocess

import yaml

from tests.deploy.monitoring import (
    DASHBOARD,
    MONITORING,
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    binary,
    metric_names,
    panel_queries,
)
from tests.helpers import ROOT


def promtool(*args: str) -> str:
    """Run promtool; its output, after asserting it succeeded."""
    done = subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_promtool_checks_the_config_and_finds_the_rules() -> None:
    """The shipped prometheus.yml is valid and its rule_files glob finds both rule files."""
    output = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert f"SUCCESS: {len(RULES)} rule files found" in output
    assert len(RULES) == 2


def test_promtool_checks_the_rules() -> None:
    """Recording and alerting rules are valid PromQL and YAML."""
    output = promtool("check", "rules", *map(str, RULES))
    assert output.count("SUCCESS") == len(RULES)


def test_the_alerts_fire_when_they_should() -> None:
    """promtool's rule unit tests: stalled engine, saturated queue, error rate, vLLM names."""
    assert RULE_TESTS
    promtool("test", "rules", *map(str, RULE_TESTS))


def test_every_vllm_name_is_recorded_from_a_myllama_metric() -> None:
    """Each vLLM-named rule reads only myllama_* metrics (so it has data wherever ours has)."""
    groups = yaml.safe_load((MONITORING / "prometheus/rules/vllm.rules.yml").read_text())
    rules = [r for g in groups["groups"] for r in g["rules"]]
    recorded = {r["record"] for r in rules}
    for name in ("num_requests_running", "num_requests_waiting", "prompt_tokens_total",
                 "generation_tokens_total", "time_to_first_token_seconds_bucket",
                 "time_per_output_token_seconds_bucket", "e2e_request_latency_seconds_bucket",
                 "request_queue_time_seconds_bucket"):  # fmt: skip
        assert f"vllm:{name}" in recorded, name
    for rule in rules:
        sources = metric_names(rule["expr"])
        assert sources and all(s.startswith("myllama_") for s in sources), rule


def test_the_dashboard_loads_and_uses_the_provisioned_data_source() -> None:
    """Valid JSON with a uid; every panel queries the provisioned Prometheus by its uid."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    datasources = yaml.safe_load(
        (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = datasources["datasources"][0]["uid"]
    titles = [p["title"] for p in dashboard["panels"]]
    assert len(titles) == len(set(titles))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
    wanted = ("Throughput", "Time to first token", "Time per output token", "Queue depth",
              "KV cells", "429s and errors", "Predictions by class")  # fmt: skip
    for word in wanted:
        assert any(word in t for t in titles), word
    for title, expr in panel_queries():
        assert metric_names(expr), (title, expr)


def test_compose_monitoring_profile_mounts_the_shipped_files() -> None:
    """prometheus and grafana are in the `monitoring` profile only and mount files that exist."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), volume
    assert all("profiles" not in services[n] for n in ("server", "ui", "mlflow"))
    provider = yaml.safe_load(
        (MONITORING / "grafana/provisioning/dashboards/myllama.yml").read_text()
    )
    mounted = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted
    target = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"][0]
    assert target["static_configs"][0]["targets"] == ["server:8000"]

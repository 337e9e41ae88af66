"""deploy/k8s validates offline (kubernetes-validate, strict) and agrees with the image, the
settings, the CLI, the routes and the metrics it names; broken copies fail the same checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from kubernetes_validate import ValidationError

from cli_settings import env_name
from server.settings import ServerSettings
from tests.deploy.k8s import (
    ADAPTER_VALUES,
    K8S,
    Doc,
    by_kind,
    load,
    manifest_files,
    mutated,
    pod_template_doc,
    validate_k8s,
)
from tests.helpers import ROOT

BUILT_IN = ["ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service",
            "HorizontalPodAutoscaler", "PodDisruptionBudget"]  # fmt: skip


def _server(deployment: Doc) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_every_manifest_validates_strictly() -> None:
    """Each built-in object validates against Kubernetes 1.30's and the newest schemas."""
    kinds = by_kind()
    assert set(BUILT_IN) <= set(kinds)
    for kind in BUILT_IN:
        validate_k8s(kinds[kind])


BROKEN = {
    "a misspelt field": lambda d: _server(d).update(readinesProbe=_server(d).pop("readinessProbe")),
    "a port as text": lambda d: _server(d)["ports"][0].update(containerPort="8000"),
    "no selector": lambda d: d["spec"].pop("selector"),
    "a probe without its port": lambda d: _server(d)["livenessProbe"]["httpGet"].pop("port"),
    "a container without a name": lambda d: _server(d).pop("name"),
    "replicas as text": lambda d: d["spec"].update(replicas="two"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_deployment_fails_validation(name: str) -> None:
    """The same validation rejects a Deployment with one mistake in it."""
    with pytest.raises(ValidationError):
        validate_k8s(mutated(by_kind()["Deployment"], BROKEN[name]))


HPA_BROKEN = {
    "a Pods metric without its name": lambda d: d["spec"]["metrics"][0]["pods"]["metric"].clear(),
    "a target without a type": lambda d: d["spec"]["metrics"][0]["pods"]["target"].pop("type"),
    "no maxReplicas": lambda d: d["spec"].pop("maxReplicas"),
}


@pytest.mark.parametrize("name", HPA_BROKEN)
def test_a_broken_hpa_fails_validation(name: str) -> None:
    """An HPA with one mistake fails too (the schemas check structure and types, not enums)."""
    with pytest.raises(ValidationError):
        validate_k8s(mutated(by_kind()["HorizontalPodAutoscaler"], HPA_BROKEN[name]))


def test_kustomization_lists_the_manifests() -> None:
    """Every top-level manifest but the example Secret is in kustomization.yaml, and it names
    the image the manifests use."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    top = {p.name for p in manifest_files() if p.parent == K8S} - {"secret.example.yaml"}
    assert set(kustomization["resources"]) == top
    assert [i["name"] for i in kustomization["images"]] == ["myllama"]


def test_images_ports_and_user_match_the_dockerfile_and_compose() -> None:
    """The image compose builds, the port the Dockerfile exposes and its non-root uid."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    image = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", compose["x-myllama"]["image"])
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile)
    assert uid is not None
    exposed = re.search(r"^EXPOSE (.+)$", dockerfile, re.M)
    assert exposed is not None and "8000" in exposed.group(1).split()
    deployment = by_kind()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        assert container["image"] == image
    assert pod["securityContext"]["runAsUser"] == int(uid.group(1))
    server = _server(deployment)
    assert server["ports"] == [{"name": "http", "containerPort": ServerSettings().port}]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ServerSettings().port)


def test_the_command_parses_and_cpu_follows_the_threads() -> None:
    """The server command is valid `myllama serve` flags; CPU request = limit = --n-threads."""
    from myllama import parse

    server = _server(by_kind()["Deployment"])
    command = server["command"]
    assert command[0] == "myllama"
    args = parse(command[1:])
    assert args.command == "serve" and args.port == ServerSettings().port
    threads = args.n_threads
    assert threads is not None
    resources = server["resources"]
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == str(threads)


def test_env_and_config_are_real_settings() -> None:
    """Each MYLLAMA_* variable and each config.yaml key is a ServerSettings field, and the file
    validates as ServerSettings; secret and config references point at what the files define."""
    kinds = by_kind()
    config_map, secret = kinds["ConfigMap"], kinds["Secret"]
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert set(config) <= set(ServerSettings.model_fields)
    ServerSettings(**config)
    names = {env_name(ServerSettings, field) for field in ServerSettings.model_fields}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    for container in pod["containers"] + pod["initContainers"]:
        for var in container.get("env", []):
            if var["name"].startswith("MYLLAMA_"):
                assert var["name"] in names, var["name"]
            ref = var.get("valueFrom", {})
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["name"] == secret["metadata"]["name"]
                assert ref["secretKeyRef"]["key"] in secret["stringData"]
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["name"] == config_map["metadata"]["name"]
                assert ref["configMapKeyRef"]["key"] in config_map["data"]
    server = _server(kinds["Deployment"])
    assert "MYLLAMA_API_KEY" in {v["name"] for v in server["env"]}
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    config_flag = server["command"][server["command"].index("--config") + 1]
    assert config_flag == f"{mounts['config']}/config.yaml"
    assert str(config["prediction_log"]).startswith(mounts["data"])


def test_volumes_claims_and_selectors_line_up() -> None:
    """Mounted volumes exist; the PVC is the one defined; Service, PDB and HPA find the pods."""
    kinds = by_kind()
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"] + pod["initContainers"]:
        assert {m["name"] for m in container.get("volumeMounts", [])} <= set(volumes)
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert kinds["Service"]["spec"]["selector"].items() <= labels.items()
    assert kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    port_names = {p["name"] for p in _server(deployment)["ports"]}
    assert {p["targetPort"] for p in kinds["Service"]["spec"]["ports"]} <= port_names
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    pdb = kinds["PodDisruptionBudget"]["spec"]
    assert pdb["minAvailable"] < kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"]


def test_probes_use_the_health_routes() -> None:
    """Readiness on /health/ready, liveness and startup on /health/live: routes the app has."""
    from server.routes.ops import router

    routes = {getattr(route, "path", "") for route in router.routes}
    server = _server(by_kind()["Deployment"])
    assert server["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert server[probe]["httpGet"]["path"] in routes
        assert server[probe]["httpGet"]["port"] == "http"


def test_the_hpa_metric_comes_through_the_adapter_rule() -> None:
    """The HPA's Pods metric is what the adapter rule exposes, from a gauge the server exports."""
    hpa = by_kind()["HorizontalPodAutoscaler"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    assert rule["name"]["as"] == name
    assert re.fullmatch(rule["name"]["matches"], name)
    assert rule["seriesQuery"].startswith(name + "{")
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    from server.metrics import EngineCollector

    gauges = {m.name: m.type for m in EngineCollector(lambda: []).collect()}
    assert gauges[name] == "gauge"


def test_the_pod_template_is_checked_on_its_own() -> None:
    """A pod template taken out of the Deployment validates as a PodTemplate (the RayService
    test relies on this), and a broken one does not."""
    template = by_kind()["Deployment"]["spec"]["template"]
    validate_k8s(pod_template_doc(template))
    broken = mutated(template, lambda t: t["spec"]["containers"][0].update(imagePullPolicy=3))
    with pytest.raises(ValidationError):
        validate_k8s(pod_template_doc(broken))


def test_every_file_is_yaml_with_kinds() -> None:
    """No stray documents: every manifest document has apiVersion, kind and a name."""
    for path in manifest_files():
        for doc in load(path):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), path
            assert doc["metadata"]["name"] == "myllama" or doc["metadata"]["name"].startswith(
                "myllama-"
            ), path

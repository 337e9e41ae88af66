"""The Kubernetes manifests in deploy/k8s: loading them, and validating them offline."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

from tests.helpers import ROOT

K8S = ROOT / "deploy" / "k8s"
RAYSERVICE = K8S / "ray" / "rayservice.yaml"
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"
# The oldest Kubernetes we support (autoscaling/v2 and policy/v1 are GA long before it) and the
# newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ["1.30", latest_version()]
NOT_MANIFESTS = {"kustomization.yaml", ADAPTER_VALUES.name}  # kustomize's and Helm's own files

Doc = dict[str, Any]


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest under deploy/k8s."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name not in NOT_MANIFESTS)


def load(path: Path) -> list[Doc]:
    """The documents of a YAML file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def by_kind() -> dict[str, Doc]:
    """The one document of each kind (the test fails if a kind appears twice)."""
    docs: dict[str, Doc] = {}
    for path in manifest_files():
        for doc in load(path):
            assert doc["kind"] not in docs, f"two {doc['kind']} manifests"
            docs[doc["kind"]] = doc
    return docs


def validate_k8s(doc: Doc) -> None:
    """Validate a built-in kind against every supported version's strict schema (unknown fields
    are errors); raises kubernetes_validate's ValidationError."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def pod_template_doc(template: Doc) -> Doc:
    """A pod template (as in a Deployment or a Ray group) as a PodTemplate object to validate."""
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "t"},
        "template": template,
    }


def _strict(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
    }


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
_POD_TEMPLATE = {"type": "object"}  # validated on its own as a PodTemplate (validate_rayservice)
_WORKER_GROUP = _strict(
    {
        "groupName": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "replicas": _INT32,
        "minReplicas": _INT32,
        "maxReplicas": _INT32,
        "numOfHosts": _INT32,
        "idleTimeoutSeconds": _INT32,
        "rayStartParams": _STRING_MAP,
        "template": _POD_TEMPLATE,
        "suspend": {"type": "boolean"},
    },
    ["groupName", "maxReplicas", "minReplicas", "template"],
)
# RayService (ray.io/v1) as KubeRay's CRD defines it (ray-operator/config/crd/bases/
# ray.io_rayservices.yaml, KubeRay v1.x): the fields these manifests may use, with KubeRay's
# types and required fields; any other field is an error (a typo would be silently dropped).
RAYSERVICE_SCHEMA = _strict(
    {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": _strict(
            {"name": {"type": "string"}, "labels": _STRING_MAP, "annotations": _STRING_MAP},
            ["name"],
        ),
        "spec": _strict(
            {
                "serveConfigV2": {"type": "string"},
                "excludeHeadPodFromServeSvc": {"type": "boolean"},
                "rayClusterConfig": _strict(
                    {
                        "rayVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "headGroupSpec": _strict(
                            {
                                "rayStartParams": _STRING_MAP,
                                "serviceType": {"type": "string"},
                                "template": _POD_TEMPLATE,
                            },
                            ["template"],
                        ),
                        "workerGroupSpecs": {"type": "array", "items": _WORKER_GROUP},
                    },
                    ["headGroupSpec"],
                ),
            },
            ["rayClusterConfig", "serveConfigV2"],
        ),
    },
    ["apiVersion", "kind", "metadata", "spec"],
)


def ray_templates(doc: Doc) -> list[Doc]:
    """The head's and every worker group's pod template."""
    cluster = doc["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster.get("workerGroupSpecs", [])]
    return [group["template"] for group in groups]


def validate_rayservice(doc: Doc) -> None:
    """The RayService's own fields against KubeRay's schema, its pod templates against
    Kubernetes', its Serve config against Ray Serve's own model; raises on the first problem."""
    from ray.serve.schema import ServeDeploySchema

    jsonschema.validate(doc, RAYSERVICE_SCHEMA)
    for template in ray_templates(doc):
        validate_k8s(pod_template_doc(template))
    for group in doc["spec"]["rayClusterConfig"].get("workerGroupSpecs", []):
        low, high = group["minReplicas"], group["maxReplicas"]
        if not low <= group.get("replicas", low) <= high:
            raise ValueError(f"worker group {group['groupName']}: replicas outside min..max")
    ServeDeploySchema.model_validate(yaml.safe_load(doc["spec"]["serveConfigV2"]))


def mutated(doc: Doc, change: Callable[[Doc], object]) -> Doc:
    """A deep copy of `doc` with `change` applied to it."""
    copied = copy.deepcopy(doc)
    change(copied)
    return copied

"""deploy/k8s/ray: the KubeRay RayService checked against KubeRay's fields, Kubernetes' pod
schema and Ray Serve's own config model; its app and flags exist here; broken copies fail."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from server.settings import ServerSettings
from tests.deploy.k8s import RAYSERVICE, Doc, by_kind, load, mutated, validate_rayservice


def _rayservice() -> Doc:
    (doc,) = load(RAYSERVICE)
    return doc


def _serve_app(doc: Doc) -> dict[str, Any]:
    (app,) = yaml.safe_load(doc["spec"]["serveConfigV2"])["applications"]
    assert isinstance(app, dict)
    return app


def _set_serve(doc: Doc, change: Callable[[dict[str, Any]], object]) -> None:
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    change(config)
    doc["spec"]["serveConfigV2"] = yaml.safe_dump(config)


def _workers(doc: Doc) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    return groups


def test_the_rayservice_validates() -> None:
    """KubeRay's fields and types, Kubernetes' pod templates (strict), Ray Serve's config."""
    validate_rayservice(_rayservice())


BROKEN: dict[str, Callable[[Doc], object]] = {
    "a misspelt spec field": lambda d: d["spec"].update(serveConfig=d["spec"].pop("serveConfigV2")),
    "a misspelt cluster field": lambda d: d["spec"]["rayClusterConfig"].update(
        workerGroupSpec=d["spec"]["rayClusterConfig"].pop("workerGroupSpecs")
    ),
    "a number in rayStartParams": lambda d: _workers(d)[0]["rayStartParams"].update(
        {"num-cpus": 2}
    ),
    "a worker group without maxReplicas": lambda d: _workers(d)[0].pop("maxReplicas"),
    "replicas above maxReplicas": lambda d: _workers(d)[0].update(replicas=99),
    "a broken pod template": lambda d: _workers(d)[0]["template"]["spec"]["containers"][0].update(
        ports=[{"containerPort": "8000"}]
    ),
    "builder args not a mapping": lambda d: _set_serve(
        d, lambda c: c["applications"][0].update(args=["--replicas", "2"])
    ),
    "a Serve app without an import path": lambda d: _set_serve(
        d, lambda c: c["applications"][0].pop("import_path")
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_rayservice_fails(name: str) -> None:
    """The same checks reject a RayService with one mistake in it."""
    with pytest.raises(Exception) as caught:
        validate_rayservice(mutated(_rayservice(), BROKEN[name]))
    assert caught.type is not AssertionError  # a validation error, not a bug in the test


# KubeRay deploys the app through a Ray Serve application builder, `builder(args) -> Application`
# (the import_path): server.ray.deployments:app_builder.
def test_the_serve_app_and_its_args_exist_here() -> None:
    """import_path names an application builder of this repository that builds the app from
    the args, and the args are `myllama serve --ray` settings with valid values."""
    from ray.serve import Application

    from server.ray.settings import RaySettings

    app = _serve_app(_rayservice())
    args = app["args"]
    module_name, _, attribute = app["import_path"].partition(":")
    builder = getattr(importlib.import_module(module_name), attribute)
    assert len(inspect.signature(builder).parameters) == 1
    assert isinstance(builder(args), Application)
    known = set(ServerSettings.model_fields) | set(RaySettings.model_fields)
    assert set(args) <= known, set(args) - known
    ServerSettings(**{k: v for k, v in args.items() if k in ServerSettings.model_fields})
    RaySettings(**{k: v for k, v in args.items() if k in RaySettings.model_fields})
    assert app["route_prefix"] == "/"


def test_cpus_follow_the_engine_threads() -> None:
    """A worker offers Ray n_threads CPUs and requests as many from Kubernetes; the head offers
    fewer, so no engine replica lands there."""
    doc = _rayservice()
    threads = _serve_app(doc)["args"]["n_threads"]
    for group in _workers(doc):
        assert group["rayStartParams"]["num-cpus"] == str(threads)
        (container,) = group["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"] == str(threads)
        assert container["resources"]["limits"]["cpu"] == str(threads)
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]
    assert int(head["rayStartParams"]["num-cpus"]) < threads


def test_the_ray_version_image_port_and_key_match() -> None:
    """rayVersion is the installed Ray; the image, the API key's Secret and the serve port are
    those of the plain Deployment."""
    import ray

    doc = _rayservice()
    assert doc["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    deployment = by_kind()["Deployment"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    server_key = next(v for v in server["env"] if v["name"] == "MYLLAMA_API_KEY")
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"name": "serve", "containerPort": ServerSettings().port} in head["ports"]
    http = yaml.safe_load(doc["spec"]["serveConfigV2"])["http_options"]
    assert http == {"host": "0.0.0.0", "port": ServerSettings().port}
    for template in [doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]] + [
        g["template"] for g in _workers(doc)
    ]:
        (container,) = template["spec"]["containers"]
        assert container["image"] == server["image"]
        key = next(v for v in container["env"] if v["name"] == "MYLLAMA_API_KEY")
        assert key == server_key

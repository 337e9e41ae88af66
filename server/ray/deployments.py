"""The Serve application: our FastAPI app as ingress, engine and predictor deployments behind it."""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from models.catalog import ModelSpec, build_catalog
from models.engine.base import EngineConfig
from models.engine.pool import llama_engine
from models.predictors.registry import PredictorRegistry
from server.app import create_app
from server.ray.board import board
from server.ray.engine_proxy import RemoteEngine
from server.ray.metrics import ReplicaCollector
from server.ray.predictors_proxy import remote_registry
from server.ray.replicas import EngineReplica, PredictorsReplica, app_name
from server.ray.settings import RaySettings
from server.settings import ServerSettings

APP_NAME = "myllama"
INGRESS_MAX_ONGOING = 1024  # HTTP requests the app replica takes at once (Ray's default is 5)


def engine_deployment_name(model_id: str) -> str:
    """The Serve deployment of one model's engine replicas."""
    return f"engine-{model_id}"


def tokenizer_config(config: EngineConfig) -> EngineConfig:
    """The smallest engine that renders and tokenizes prompts (one slot, no caches)."""
    small: dict[str, Any] = {
        "n_ctx": 64,
        "ctx_size": 64,
        "parallel": 1,
        "n_batch": 64,
        "max_queue": 0,
    }
    small |= {"n_threads": 1, "prefix_cache": False, "host_cache_mib": 0, "speculative": False}
    known = {f.name for f in fields(EngineConfig)}
    return replace(config, **{k: v for k, v in small.items() if k in known})


class Ingress:
    """The app replica: `create_app` with engines and predictors that call the deployments."""

    def __init__(
        self,
        settings: ServerSettings,
        engines: dict[str, Any],
        predictors: Any | None,
    ) -> None:
        self.settings = settings
        self.engines = engines
        self.predictors = predictors

    def engine(self, spec: ModelSpec, config: EngineConfig) -> RemoteEngine:
        """The engine factory: a proxy to this model's deployment, tokenizing here."""
        tokenizer = llama_engine(spec.model_copy(update={"n_ctx": 64}), tokenizer_config(config))
        name = engine_deployment_name(spec.id)
        return RemoteEngine(self.engines[spec.id], name, tokenizer, board(app_name()))

    def registry(self, settings: ServerSettings) -> PredictorRegistry:
        """The predictor loader: cards from the predictors deployment, scoring there."""
        if self.predictors is None:
            return PredictorRegistry.disabled()
        return remote_registry(self.predictors)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve asks for the ASGI app once the replica is constructed."""
        app = create_app(self.settings, engine_factory=self.engine, predictor_loader=self.registry)
        app.state.metrics.registry.register(ReplicaCollector(app.state.pool.unique))
        return app


def _absolute(settings: ServerSettings) -> ServerSettings:
    """Relative paths and sqlite URIs made absolute: replicas may run in another directory."""
    update: dict[str, Any] = {}
    for name in ("predictors_dir", "prediction_log", "log_completions"):
        value = getattr(settings, name)
        if isinstance(value, Path) and not value.is_absolute():
            update[name] = value.resolve()
    uri = settings.tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        update["tracking_uri"] = prefix + str(Path(uri.removeprefix(prefix)).resolve())
    update["model"] = [
        str(Path(m).resolve()) if "=" not in m and Path(m).is_file() else m for m in settings.model
    ]
    return settings.model_copy(update=update)


def engine_options(settings: ServerSettings, ray_settings: RaySettings) -> dict[str, Any]:
    """Replicas, autoscaling and CPUs of an engine deployment."""
    threads = settings.n_threads or os.cpu_count() or 1
    # Ray sends a replica at most `parallel` requests: the rest wait in Ray's router for the
    # first free slot on any replica, at most `max_queue` of them (beyond it, 429).
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": threads},
        "max_ongoing_requests": settings.parallel,
        "max_queued_requests": max(settings.max_queue, 1),
        "health_check_period_s": 5.0,
        "health_check_timeout_s": 30.0,
    }
    low, high = ray_settings.replica_range()
    if not ray_settings.autoscaling:
        options["num_replicas"] = low
        return options
    options["autoscaling_config"] = {
        "min_replicas": low,
        "initial_replicas": max(low, 1),
        "max_replicas": high,
        "target_ongoing_requests": ray_settings.target_ongoing_requests or settings.parallel,
        "upscale_delay_s": ray_settings.upscale_delay_s,
        "downscale_delay_s": ray_settings.downscale_delay_s,
        "look_back_period_s": ray_settings.autoscale_look_back_s,
        "metrics_interval_s": 1.0,
    }
    return options


def build_application(settings: ServerSettings, ray_settings: RaySettings) -> Application:
    """The Serve application for these settings."""
    settings = _absolute(settings)
    specs = build_catalog(settings.models, settings.model, settings.tracking_uri)
    config = settings.engine_config(settings.max_tokens_limit)
    engine: Any = serve.deployment(EngineReplica)
    options = engine_options(settings, ray_settings)
    engines = {
        spec.id: engine.options(name=engine_deployment_name(spec.id), **options).bind(spec, config)
        for spec in specs
    }
    predictors = None
    if settings.load_predictors:
        deployment: Any = serve.deployment(PredictorsReplica)
        predictors = deployment.options(
            name="predictors",
            ray_actor_options={"num_cpus": ray_settings.predictor_cpus},
            max_ongoing_requests=32,
            autoscaling_config={
                "min_replicas": 1,
                "max_replicas": ray_settings.predictor_replicas_max,
                "target_ongoing_requests": 4,
                "upscale_delay_s": ray_settings.upscale_delay_s,
                "downscale_delay_s": ray_settings.downscale_delay_s,
            },
        ).bind(settings.tracking_uri, settings.predictors_dir)
    app: Any = serve.deployment(serve.ingress()(Ingress))
    ingress = app.options(
        name="app",
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=INGRESS_MAX_ONGOING,
    )
    return ingress.bind(settings, engines, predictors)


def cpus_needed(settings: ServerSettings, ray_settings: RaySettings) -> float:
    """Ray CPUs the most replicas of every deployment ask for."""
    specs = build_catalog(settings.models, settings.model, settings.tracking_uri)
    threads = settings.n_threads or os.cpu_count() or 1
    engines = len(specs) * ray_settings.replica_range()[1] * threads
    predictors = ray_settings.predictor_replicas_max * ray_settings.predictor_cpus
    return engines + (predictors if settings.load_predictors else 0.0)


def app_builder(args: dict[str, Any]) -> Application:
    """Ray Serve's application builder (`serve run server.ray.deployments:app_builder`, KubeRay's
    import_path): `myllama serve --ray`'s application from its settings given as args."""
    known = set(ServerSettings.model_fields) | set(RaySettings.model_fields)
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"not `myllama serve --ray` settings: {', '.join(sorted(unknown))}")
    server = ServerSettings(**{k: v for k, v in args.items() if k in ServerSettings.model_fields})
    ray = RaySettings(**{k: v for k, v in args.items() if k in RaySettings.model_fields})
    return build_application(server, ray)

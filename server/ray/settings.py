"""Settings of `myllama serve --ray`: replicas, autoscaling and the Ray instance."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RaySettings(BaseSettings):
    """How the server runs on Ray Serve (only read with --ray)."""

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_RAY_", extra="ignore", populate_by_name=True
    )

    ray: bool = Field(
        default=False,
        validation_alias="MYLLAMA_RAY",
        description="Serve on Ray Serve: the same API, the engine as replicas behind Ray's proxy.",
    )
    ray_address: str | None = Field(
        default=None,
        validation_alias="MYLLAMA_RAY_ADDRESS",
        description="Ray cluster to join (e.g. 10.0.0.5:6379, or auto); default: start a local "
        "Ray instance for this server.",
    )
    replicas: int | None = Field(
        default=None,
        ge=1,
        description="Engine replicas per model (fixed); default 1, or autoscaling when "
        "--min-replicas/--max-replicas are given.",
    )
    min_replicas: int | None = Field(
        default=None, ge=0, description="Fewest engine replicas when autoscaling."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, description="Most engine replicas when autoscaling."
    )
    target_ongoing_requests: float | None = Field(
        default=None,
        gt=0,
        description="Autoscaling target of ongoing (running + waiting) requests per engine "
        "replica; default: --parallel.",
    )
    upscale_delay_s: float = Field(
        default=10.0, ge=0, description="Seconds the load must stay high before a replica is added."
    )
    downscale_delay_s: float = Field(
        default=300.0,
        ge=0,
        description="Seconds the load must stay low before a replica is removed.",
    )
    autoscale_look_back_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds of ongoing-request samples the autoscaler averages over.",
    )
    predictor_replicas_max: int = Field(
        default=2, ge=1, description="Most predictor replicas (they autoscale from 1 on their own)."
    )
    predictor_cpus: float = Field(
        default=0.25, ge=0, description="Ray CPUs reserved by each predictor replica."
    )
    ray_object_store_mb: int = Field(
        default=150,
        ge=80,
        description="Object store of a local Ray instance, in MB (requests and pieces are small).",
    )
    ray_num_cpus: int | None = Field(
        default=None,
        ge=1,
        description="CPUs a local Ray instance offers; default: this machine's, or enough for "
        "the replicas asked for.",
    )

    @model_validator(mode="after")
    def _one_way_to_scale(self) -> RaySettings:
        autoscale = self.min_replicas is not None or self.max_replicas is not None
        if autoscale and self.replicas is not None:
            raise ValueError("give --replicas or --min-replicas/--max-replicas, not both")
        low, high = self.min_replicas or 0, self.max_replicas
        if high is not None and low > high:
            raise ValueError(f"min_replicas ({low}) is above max_replicas ({high})")
        return self

    @property
    def autoscaling(self) -> bool:
        """True when the engine replicas autoscale."""
        return self.min_replicas is not None or self.max_replicas is not None

    def replica_range(self) -> tuple[int, int]:
        """(fewest, most) engine replicas."""
        if not self.autoscaling:
            return self.replicas or 1, self.replicas or 1
        low = self.min_replicas if self.min_replicas is not None else 1
        return low, max(self.max_replicas or low, low, 1)

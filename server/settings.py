"""Server settings: flags, a YAML config file and MYLLAMA_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.catalog import DEFAULT_MODEL_ID, ModelSpec


class ServerSettings(BaseSettings):
    """Everything `myllama serve` can be told."""

    model_config = SettingsConfigDict(env_prefix="MYLLAMA_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on.")
    model: list[str] = Field(
        default_factory=list,
        description="Model to serve instead of the default: a GGUF PATH, ID=PATH or a catalog "
        "id (repeatable; add smollm2-135m-instruct to keep the default too).",
    )
    models: list[ModelSpec] = Field(
        default_factory=list,
        description="Models from the config file (id, path or package+file, aliases, n_ctx).",
    )
    default_model: str = Field(
        default=DEFAULT_MODEL_ID, description="Model used when a request names none."
    )
    api_key: SecretStr | None = Field(
        default=None, description="If set, every /v1 route needs 'Authorization: Bearer KEY'."
    )
    n_ctx: int = Field(default=2048, ge=64, description="Context size per request, in tokens.")
    parallel: int = Field(
        default=8, ge=1, le=64, description="Requests decoded together (slots per model)."
    )
    n_batch: int = Field(
        default=512, ge=32, description="Tokens per decode step; longer prompts are chunked."
    )
    max_queue: int = Field(
        default=64, ge=0, description="Requests allowed to wait for a slot; beyond it, 429."
    )
    prefix_cache: bool = Field(
        default=True, description="Reuse a free slot's cached prompt prefix (e.g. a system prompt)."
    )
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads (default: all).")
    n_gpu_layers: int = Field(
        default=0, description="Layers offloaded to the GPU (-1: all; needs a GPU build)."
    )
    tracking_uri: str = Field(
        default="sqlite:///mlflow.db", description="MLflow tracking URI for the predictors."
    )
    predictors_dir: Path = Field(
        default=Path("artifacts/predictors"),
        description="Trained predictor artefacts, used when MLflow has no champion.",
    )
    prediction_log: Path = Field(
        default=Path("predictions.db"), description="SQLite file that logs every prediction."
    )
    prediction_log_max_rows: int = Field(
        default=20_000,
        ge=1,
        description="Most rows answered but not yet written to the prediction log; beyond it a "
        "predict request waits, then gets 503.",
    )
    prediction_log_flush_interval: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between prediction-log commits while rows wait: the most a SIGKILL "
        "can lose.",
    )
    prediction_log_wait: float = Field(
        default=1.0, ge=0, description="Seconds a predict request waits for room in a full log."
    )
    prediction_log_close_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds shutdown waits for the prediction log to flush (keep under docker "
        "stop's 10 s).",
    )
    log_completions: Path | None = Field(
        default=None,
        description="SQLite file that logs every answered choice (prompt, answer, timings) for "
        "live drift. Off by default: it stores user text.",
    )
    load_predictors: bool = Field(
        default=True, description="Load the classical predictors at start-up."
    )
    log_level: str = Field(default="info", description="Logging level.")
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; beyond it, 413.",
    )
    max_messages: int = Field(
        default=1024, ge=1, description="Most chat messages in one request; beyond it, 400."
    )
    max_prompt_chars: int = Field(
        default=1_000_000,
        ge=1,
        description="Most characters of message text (or prompt) in one request; beyond it, 400.",
    )
    max_n: int = Field(default=4, ge=1, le=64, description="Most choices (n) in one request.")
    max_tokens_default: int = Field(
        default=512,
        ge=1,
        description="Tokens generated when a chat request sets no max_tokens (capped by the "
        "context left).",
    )
    max_tokens_limit: int | None = Field(
        default=None,
        ge=1,
        description="Largest max_tokens a request may ask for (beyond it, 400); default: the "
        "context left.",
    )
    request_timeout: float = Field(
        default=600.0, gt=0, description="Seconds a generation may run before it ends with 504."
    )
    sse_keepalive: float = Field(
        default=15.0,
        gt=0,
        description="Seconds of silence after which a stream sends a keep-alive comment (e.g. "
        "while it waits in the queue).",
    )
    watchdog_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds without engine progress (while work is pending) after which "
        "requests fail with 503 and /health/ready turns red.",
    )

    @model_validator(mode="after")
    def _key_not_empty(self) -> ServerSettings:
        if self.api_key is not None and not self.api_key.get_secret_value().strip():
            raise ValueError("api_key is empty: set a real key, or leave it unset for no auth")
        return self

    @model_validator(mode="after")
    def _batch_holds_every_slot(self) -> ServerSettings:
        if self.n_batch < self.parallel:
            raise ValueError(
                f"n_batch ({self.n_batch}) must be at least parallel ({self.parallel})"
            )
        return self

"""Settings of `myllama serve`: flags, a YAML config file and MYLLAMA_* environment variables.

Three groups, each in its own class: how the LLM engine runs (EngineSettings, whose defaults are
EngineConfig's), where the predictors and their log live (PredictorSettings), and the HTTP
server itself (ServerSettings, which has all three). The names stay flat (`--n-ctx`,
`MYLLAMA_N_CTX`), and no variable means one thing to the server and another to a different
command: eval, train and the UI read their own prefixes (MYLLAMA_EVAL_*, MYLLAMA_TRAIN_*,
MYLLAMA_UI_*) and share only MYLLAMA_TRACKING_URI, MYLLAMA_SERVER_URL and MYLLAMA_API_KEY.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.catalog import DEFAULT_MODEL_ID, ModelSpec
from models.engine import EngineConfig
from models.engine.base import FlashAttn, KvType

_DEFAULTS = EngineConfig()
_CONFIG = SettingsConfigDict(env_prefix="MYLLAMA_", extra="ignore")


class EngineSettings(BaseSettings):
    """How each LLM engine runs: context, slots, batch, queue, threads, speculation, caches."""

    model_config = _CONFIG

    ctx_size: int | None = Field(
        default=_DEFAULTS.ctx_size,
        ge=64,
        description="KV cache cells (tokens) in all, as llama-server's -c: split evenly between "
        "the slots, or one cache they share with --kv-unified (default: 2048 per slot).",
    )
    kv_unified: bool = Field(
        default=_DEFAULTS.kv_unified,
        description="One KV cache all slots share: one request may use most of it and a shared "
        "prefix is held once, but every decode attends over all cells in use (slower here with "
        "many cached prompts); requests wait while running ones could need the rest.",
    )
    cache_type_k: KvType = Field(
        default=_DEFAULTS.cache_type_k,
        description="How the KV cache stores keys, as llama-server's -ctk: q8_0 halves the "
        "cache's memory (f16, bf16, f32, q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl).",
    )
    cache_type_v: KvType = Field(
        default=_DEFAULTS.cache_type_v,
        description="How the KV cache stores values, as llama-server's -ctv (a quantised type "
        "needs flash attention, which llama.cpp turns on where the backend has it).",
    )
    flash_attn: FlashAttn = Field(
        default=_DEFAULTS.flash_attn,
        description="Flash attention, as llama-server's -fa: auto (llama.cpp turns it on where "
        "the backend has it), on, or off (a quantised V cache needs it).",
    )
    n_ctx: int | None = Field(
        default=_DEFAULTS.n_ctx,
        ge=64,
        description="Most tokens (prompt + output) per request (default: what one slot may "
        "hold, within the model's trained context).",
    )
    parallel: int = Field(
        default=_DEFAULTS.parallel,
        ge=1,
        le=64,
        description="Requests decoded together (slots per model).",
    )
    n_batch: int = Field(
        default=_DEFAULTS.n_batch,
        ge=32,
        description="Tokens per decode step; longer prompts are chunked.",
    )
    max_queue: int = Field(
        default=_DEFAULTS.max_queue,
        ge=0,
        description="Requests allowed to wait for a slot; beyond it, 429.",
    )
    prefix_cache: bool = Field(
        default=_DEFAULTS.prefix_cache,
        description="Reuse a free slot's cached prompt prefix (e.g. a system prompt).",
    )
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads (default: all).")
    n_gpu_layers: int = Field(
        default=_DEFAULTS.n_gpu_layers,
        description="Layers offloaded to the GPU (-1: all; needs a GPU build).",
    )
    max_tokens_default: int = Field(
        default=_DEFAULTS.max_tokens_default,
        ge=1,
        description="Tokens generated when a chat request sets no max_tokens (capped by the "
        "context left).",
    )
    watchdog_s: float = Field(
        default=_DEFAULTS.watchdog_s,
        gt=0,
        description="Seconds without engine progress (while work is pending) after which "
        "requests fail with 503 and /health/ready turns red.",
    )
    speculative: bool = Field(
        default=_DEFAULTS.speculative,
        description="Prompt-lookup speculative decoding for greedy (temperature 0) requests.",
    )
    draft_tokens: int = Field(
        default=_DEFAULTS.draft_tokens, ge=1, le=32, description="Most draft tokens per step."
    )
    draft_step_rows: int = Field(
        default=_DEFAULTS.draft_step_rows,
        ge=2,
        le=512,
        description="Drafts fill a decode step up to this many rows (tokens of all slots; no "
        "drafts while a prompt is prefilled): on a CPU a row costs about what it may save once "
        "a step has a few; on a GPU a larger value can pay.",
    )
    host_cache_mib: int = Field(
        default=_DEFAULTS.host_cache_mib,
        ge=0,
        description="Host RAM (MiB) keeping the KV of finished requests for reuse (0: off).",
    )
    kv_on_demand: bool = Field(
        default=_DEFAULTS.kv_on_demand,
        description="KV memory becomes resident as slots write cells (llama.cpp zero-fills it "
        "all at start; those pages go back to the kernel). Off: all resident from the start, and "
        "a slot's first use skips ~5 us per 4 KiB page of page faults.",
    )

    def engine_config(self, max_tokens_limit: int | None = None) -> EngineConfig:
        """The engine's config (a request's default max_tokens never exceeds the limit)."""
        default = min(self.max_tokens_default, max_tokens_limit or self.max_tokens_default)
        return EngineConfig(
            ctx_size=self.ctx_size,
            kv_unified=self.kv_unified,
            cache_type_k=self.cache_type_k,
            cache_type_v=self.cache_type_v,
            flash_attn=self.flash_attn,
            n_ctx=self.n_ctx,
            parallel=self.parallel,
            n_batch=self.n_batch,
            max_queue=self.max_queue,
            n_threads=self.n_threads,
            n_gpu_layers=self.n_gpu_layers,
            prefix_cache=self.prefix_cache,
            max_tokens_default=default,
            watchdog_s=self.watchdog_s,
            speculative=self.speculative,
            draft_tokens=self.draft_tokens,
            draft_step_rows=self.draft_step_rows,
            host_cache_mib=self.host_cache_mib,
            kv_on_demand=self.kv_on_demand,
        )


class PredictorSettings(BaseSettings):
    """Where the classical predictors come from and where their predictions are logged."""

    model_config = _CONFIG

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
    drift_experiment: str | None = Field(
        default="myllama-drift",
        description="MLflow experiment of `myllama eval drift` runs whose latest verdicts "
        "/metrics shows (myllama_drift_verdict); empty: off.",
    )
    load_predictors: bool = Field(
        default=True, description="Load the classical predictors at start-up."
    )


class ServerSettings(EngineSettings, PredictorSettings):
    """Everything `myllama serve` can be told: the HTTP server, plus engine and predictor groups."""

    model_config = _CONFIG

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
    log_completions: Path | None = Field(
        default=None,
        description="SQLite file that logs every answered choice (prompt, answer, timings) for "
        "live drift. Off by default: it stores user text.",
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

"""Settings of `myllama eval run | tag-reference | drift`: flags and MYLLAMA_EVAL_* variables.

Only names that mean the same thing to every command are shared: MYLLAMA_SERVER_URL,
MYLLAMA_API_KEY, MYLLAMA_TRACKING_URI, MYLLAMA_PREDICTION_LOG and MYLLAMA_LOG_COMPLETIONS (the
files the server writes). So the server's MYLLAMA_MODEL (its GGUF list) never becomes the model
an eval asks for (MYLLAMA_EVAL_MODEL).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.predictors.registry import PREDICTOR_NAMES
from models.predictors.tracking import DEFAULT_TRACKING_URI


class EvalRunSettings(BaseSettings):
    """What `myllama eval run` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_EVAL_", extra="ignore", populate_by_name=True
    )

    prompts: str = Field(
        default="general",
        description="Prompt set: a shipped name (general, smoke) or a JSONL path.",
    )
    server_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias="MYLLAMA_SERVER_URL",
        description="The running server (with or without /v1).",
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias="MYLLAMA_API_KEY", description="The server's API key."
    )
    model: str | None = Field(default=None, description="Model id (default: the server's).")
    system: str | None = Field(
        default=None, description="System message that replaces (or is added to) every prompt's."
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int | None = Field(
        default=None, ge=1, description="Output token limit (default: each prompt's, else 256)."
    )
    seed: int | None = Field(default=None, description="Sampling seed sent with every request.")
    concurrency: str = Field(
        default="1,4,8", description="Comma-separated concurrency levels, e.g. 1,4,8."
    )
    repeats: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Passes per concurrency level; 2+ passes in all calibrate the noise floor.",
    )
    limit: int | None = Field(default=None, ge=2, description="Use only the first N prompts.")
    reference: str | None = Field(
        default=None,
        description="Reference RUN_ID, or 'latest' (default: latest run tagged reference).",
    )
    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow tracking URI.",
    )
    experiment: str = Field(default="myllama-eval", description="MLflow experiment name.")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Significance level.")
    permutations: int = Field(
        default=1000, ge=99, description="Permutations / bootstrap resamples per drift test."
    )
    html: Path | None = Field(
        default=None, description="Also write the HTML drift report here (with a reference)."
    )
    trace: bool = Field(
        default=False,
        description="Record every request as an MLflow trace (openai autologging), linked to "
        "the run; adds a little client-side time to each request.",
    )

    @field_validator("concurrency")
    @classmethod
    def _levels(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("give positive integers separated by commas, e.g. 1,4,8")
        return ",".join(parts)

    @property
    def levels(self) -> list[int]:
        """The concurrency levels, in the order given."""
        return [int(p) for p in self.concurrency.split(",")]


class TagReferenceSettings(BaseSettings):
    """What `myllama eval tag-reference` can be told (besides the run id)."""

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_EVAL_", extra="ignore", populate_by_name=True
    )

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow tracking URI.",
    )


class DriftSettings(BaseSettings):
    """What `myllama eval drift` can be told: a predictor's traffic, or the LLM's (--llm)."""

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_EVAL_", extra="ignore", populate_by_name=True
    )

    predictor: str | None = Field(
        default=None, description=f"Predictor: one of {', '.join(PREDICTOR_NAMES)}."
    )
    llm: bool = Field(
        default=False, description="LLM drift: the completions log against a reference eval run."
    )
    since: datetime | None = Field(
        default=None, description="Only traffic logged at or after this ISO date/time (UTC)."
    )
    prediction_log: Path = Field(
        default=Path("predictions.db"),
        validation_alias="MYLLAMA_PREDICTION_LOG",
        description="SQLite prediction log written by the server.",
    )
    true_labels: Path | None = Field(
        default=None,
        description="CSV of the window's true labels (column 'label'): adds target drift.",
    )
    completions_log: Path = Field(
        default=Path("completions.db"),
        validation_alias="MYLLAMA_LOG_COMPLETIONS",
        description="SQLite completions log written by `myllama serve --log-completions`.",
    )
    reference: str | None = Field(
        default=None, description="--llm: the reference eval RUN_ID (an `eval run` run)."
    )
    model: str | None = Field(default=None, description="--llm: only answers of this model id.")
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="Family-wise false-alarm rate.")
    resamples: int = Field(
        default=1000, ge=99, le=100_000, description="Monte Carlo / permutation draws per test."
    )
    seed: int = Field(default=0, description="Seed of the Monte Carlo / permutation draws.")
    html: Path | None = Field(default=None, description="Also write the HTML report here.")
    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow tracking URI.",
    )
    experiment: str = Field(default="myllama-drift", description="MLflow experiment name.")

    @field_validator("predictor")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in PREDICTOR_NAMES:
            raise ValueError(
                f"unknown predictor {value!r}; choose from {', '.join(PREDICTOR_NAMES)}"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> DriftSettings:
        if self.llm == (self.predictor is not None):
            raise ValueError("give either --predictor NAME or --llm")
        if self.llm and not self.reference:
            raise ValueError("--llm needs --reference RUN_ID (an `eval run` run)")
        return self

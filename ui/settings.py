"""UI settings: flags and MYLLAMA_* environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    """Everything `myllama ui` can be told."""

    model_config = SettingsConfigDict(env_prefix="MYLLAMA_", extra="ignore")

    server_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL of the My LLAMA server."
    )
    host: str = Field(default="127.0.0.1", description="Address the UI listens on.")
    port: int = Field(default=7860, ge=0, le=65535, description="Port the UI listens on.")
    api_key: SecretStr | None = Field(
        default=None, description="API key the UI sends to the server, if it needs one."
    )
    timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for the server (connect and read)."
    )
    log_level: str = Field(default="info", description="Logging level.")

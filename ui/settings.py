"""UI settings: flags, and MYLLAMA_UI_* environment variables apart from the server's."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    """Everything `myllama ui` can be told.

    The UI's own settings read MYLLAMA_UI_HOST, MYLLAMA_UI_PORT, MYLLAMA_UI_TIMEOUT and
    MYLLAMA_UI_LOG_LEVEL, never the server's MYLLAMA_HOST/PORT/LOG_LEVEL (`myllama up` runs
    both from one environment); the server's address and key read MYLLAMA_SERVER_URL and
    MYLLAMA_API_KEY.
    """

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_UI_", extra="ignore", populate_by_name=True
    )

    server_url: str = Field(
        default="http://127.0.0.1:8000",
        validation_alias="MYLLAMA_SERVER_URL",
        description="Base URL of the My LLAMA server.",
    )
    host: str = Field(default="127.0.0.1", description="Address the UI listens on.")
    port: int = Field(default=7860, ge=0, le=65535, description="Port the UI listens on.")
    api_key: SecretStr | None = Field(
        default=None,
        validation_alias="MYLLAMA_API_KEY",
        description="API key the UI sends to the server, if it needs one.",
    )
    timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for the server (connect and read)."
    )
    log_level: str = Field(default="info", description="Logging level of the UI.")

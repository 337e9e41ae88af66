"""UI settings: flags, and MYLLAMA_UI_* environment variables apart from the server's."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class UISettings(BaseSettings):
    """Everything `myllama ui` can be told.

    The UI's own settings read MYLLAMA_UI_HOST, MYLLAMA_UI_PORT, MYLLAMA_UI_TIMEOUT and
    MYLLAMA_UI_LOG_LEVEL, never the server's MYLLAMA_HOST/PORT/LOG_LEVEL (`myllama up` runs
    both from one environment); the server's address and key read MYLLAMA_SERVER_URL and
    MYLLAMA_API_KEY, the shared MLflow store MYLLAMA_TRACKING_URI. MYLLAMA_UI_USERS /
    MYLLAMA_UI_USERS_FILE turn the login page on.
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
    tracking_uri: str = Field(
        default="sqlite:///mlflow.db",
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow store the Drift tab reads and chat feedback is written to (the "
        "server's and eval's store: `myllama up` passes it to the server too).",
    )
    drift_experiment: str = Field(
        default="myllama-drift",
        description="MLflow experiment of `myllama eval drift` runs (the Drift tab lists them).",
    )
    feedback_experiment: str = Field(
        default="myllama-chat-feedback",
        description="MLflow experiment where a like/dislike of a chat answer is kept (a trace "
        "of the exchange with a human assessment).",
    )
    trace_chats: bool = Field(
        default=False,
        description="Keep every chat answer as an MLflow trace in --chat-experiment (the "
        "messages sent, the answer, who asked, TTFT and tokens): opt-in, as it stores what "
        "users write. A like/dislike then lands on the answer's own trace.",
    )
    chat_experiment: str = Field(
        default="myllama-chats",
        description="MLflow experiment of the chat traces written with --trace-chats.",
    )
    users: SecretStr | None = Field(
        default=None,
        description="Who may sign in to the UI: 'user:password' pairs separated by commas "
        "(better in MYLLAMA_UI_USERS than on the command line). Set, the UI asks for a login.",
    )
    users_file: Path | None = Field(
        default=None,
        description="A file of 'user:password' lines (blank lines and '#' comments skipped) "
        "who may sign in to the UI, with or instead of --users.",
    )

    def logins(self) -> dict[str, str]:
        """user → password from --users and --users-file (ValueError names a bad entry's number)."""
        lines = self.users.get_secret_value().split(",") if self.users else []
        if self.users_file is not None:
            lines += self.users_file.read_text().splitlines()
        logins: dict[str, str] = {}
        for number, line in enumerate((raw.strip() for raw in lines), start=1):
            if not line or line.startswith("#"):
                continue
            user, sep, password = line.partition(":")
            if not sep or not user.strip() or not password:
                raise ValueError(
                    f"UI users: entry {number} is not 'user:password' with both parts non-empty"
                )
            logins[user.strip()] = password
        return logins

"""MLflow access for the predictors: imported lazily, offline (no telemetry), store detection."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # in the working directory


def offline() -> None:
    """Switch MLflow's telemetry and progress bars off before it is first imported."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def store_exists(tracking_uri: str) -> bool:
    """False for a local store (sqlite file or folder) that was never created; servers are tried."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        path = tracking_uri.removeprefix("sqlite:///")
        return path == ":memory:" or Path(path).is_file()
    if parsed.scheme in ("", "file"):
        return Path(parsed.path or tracking_uri).is_dir()
    return True

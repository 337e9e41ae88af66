"""Fetch the predictors' MLflow champions (model file and card) in a child process.

Resolving an alias and downloading a model needs MLflow's client, SQLAlchemy and the store's
schema code: ~85 MB of RSS that a server would keep for its whole life to read three files. A
short-lived child (`python -m models.predictors.champions`) copies each champion's skops file and
card into a folder; the server then loads them itself, under its own allow-list.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from models.predictors.tracking import offline

log = logging.getLogger(__name__)

ALIAS = "champion"
MODEL_FILE = "model.skops"
CARD_FILE = "predictor.json"
FETCH_TIMEOUT_S = 600.0


def fetch(tracking_uri: str, names: list[str], folder: Path) -> dict[str, dict[str, Any]]:
    """Per name: {"version"} with its files in folder/name, {"missing": true}, or {"error"}."""
    offline()
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            version = client.get_model_version_by_alias(name, ALIAS)
        except MlflowException:
            found[name] = {"missing": True}
            continue
        try:
            target = folder / name
            target.mkdir(parents=True)
            card = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{CARD_FILE}")
            (target / CARD_FILE).write_text(json.dumps(card))
            with tempfile.TemporaryDirectory(prefix=f"champion-{name}-") as downloads:
                model = _model_file(name, str(version.version), Path(downloads))
                shutil.copyfile(model, target / MODEL_FILE)
            found[name] = {"version": str(version.version)}
        except Exception as exc:  # reported per predictor; the others still load
            found[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return found


def _model_file(name: str, version: str, downloads: Path) -> Path:
    """The champion's skops file, downloaded; refused if MLflow stored it any other way."""
    import mlflow
    from mlflow.models import Model

    uri = f"models:/{name}/{version}"
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(downloads)))
    flavor = Model.load(str(local / "MLmodel")).flavors.get("sklearn", {})
    stored = flavor.get("serialization_format", "pickle")
    if stored != "skops":
        raise ValueError(
            f"{name} v{version} is stored as {stored}, not skops; the server never unpickles a "
            f"model: retrain it with `myllama train {name}`"
        )
    path = (local / str(flavor.get("pickled_model", MODEL_FILE))).resolve()
    if not path.is_relative_to(local.resolve()):
        raise ValueError(f"{name} v{version}: its model file lies outside the model")
    return path


def fetch_in_child(tracking_uri: str, names: list[str], folder: Path) -> dict[str, dict[str, Any]]:
    """fetch() run by a child Python (the URI goes by environment, never the command line)."""
    env = {**os.environ, "MYLLAMA_CHAMPIONS_TRACKING_URI": tracking_uri}
    command = [sys.executable, "-m", __name__, str(folder), *names]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"fetching the champions took over {FETCH_TIMEOUT_S:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise RuntimeError(f"fetching the champions failed: {tail[0]}")
    result: dict[str, dict[str, Any]] = json.loads(lines[-1])
    return result


def main() -> None:
    """Child entry point: fetch into argv[1] the champions named after it; JSON on stdout."""
    folder, names = Path(sys.argv[1]), sys.argv[2:]
    found = fetch(os.environ["MYLLAMA_CHAMPIONS_TRACKING_URI"], names, folder)
    sys.stdout.write(json.dumps(found) + "\n")


if __name__ == "__main__":
    main()

"""`myllama train [iris|income|churn|all]`: train, print held-out metrics, log to MLflow."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.predictors.registry import PREDICTOR_NAMES
from models.predictors.tracking import DEFAULT_TRACKING_URI

STEPS = 5  # load, fit, evaluate, MLflow, artefact (see train.train)


class TrainSettings(BaseSettings):
    """Everything `myllama train` can be told."""

    model_config = SettingsConfigDict(
        env_prefix="MYLLAMA_TRAIN_", extra="ignore", populate_by_name=True
    )

    tracking_uri: str = Field(
        default=DEFAULT_TRACKING_URI,
        validation_alias="MYLLAMA_TRACKING_URI",
        description="MLflow tracking URI for the predictors.",
    )
    predictors_dir: Path = Field(
        default=Path("artifacts/predictors"),
        validation_alias="MYLLAMA_PREDICTORS_DIR",
        description="Where the trained artefacts are saved (the server's fallback).",
    )
    log_level: str = Field(default="warning", description="Logging level.")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the train flags."""
    from cli_settings import add_settings_flags

    parser.add_argument(
        "predictor",
        nargs="?",
        default="all",
        choices=[*PREDICTOR_NAMES, "all"],
        help="Which predictor to train (default: all).",
    )
    add_settings_flags(parser, TrainSettings)


def run(args: argparse.Namespace) -> int:
    """Train, show progress on stderr, print one JSON line of results on stdout."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from cli_settings import load_settings
    from models.predictors.datasets import DatasetUnavailable
    from models.predictors.train import train

    settings = load_settings(TrainSettings, args)
    names = list(PREDICTOR_NAMES) if args.predictor == "all" else [args.predictor]
    console = Console(stderr=True)
    results = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[name]:<7}"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for name in names:
            task = progress.add_task("waiting", total=STEPS, name=name)

            def step(what: str, task: TaskID = task) -> None:
                progress.update(task, description=what, advance=1)

            try:
                result = train(name, settings.tracking_uri, settings.predictors_dir, step=step)
            except DatasetUnavailable as exc:
                raise SystemExit(f"myllama train {name}: {exc}") from exc
            progress.update(task, description=f"v{result.version} registered", completed=STEPS)
            results.append(result)
    for r in results:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
        console.print(f"[bold]{r.name}[/] v{r.version} (alias champion): {shown}")
    payload = {
        "tracking_uri": settings.tracking_uri,
        "predictors": {r.name: {"version": r.version, **r.metrics} for r in results},
    }
    sys.stdout.write(json.dumps(payload) + "\n")
    return 0

"""`myllama models list | show | quantize | promote` (the dispatcher adds compare from eval)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from models.lifecycle.registry import CHAMPION, tracking_uri_from_env

_COLUMNS = ("id", "source", "quantization", "file_size", "n_params", "n_ctx_train", "sha256")


def _tracking(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store of the registry (default: MYLLAMA_TRACKING_URI or sqlite:///mlflow.db).",
    )


def configure(parser: argparse.ArgumentParser) -> Any:
    """Add the models actions; returns the sub-parsers so the dispatcher can add `compare`."""
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="Every servable model: catalog and registry versions.")
    listing.add_argument("--json", action="store_true", help="One JSON document, not a table.")
    _tracking(listing)
    show = sub.add_parser("show", help="One model's facts, as JSON.")
    show.add_argument("ref", metavar="ID", help="Catalog id, registered id, models:/ URI or path.")
    _tracking(show)
    quant = sub.add_parser("quantize", help="Quantise a GGUF with llama.cpp and register it.")
    quant.add_argument(
        "src", metavar="SRC", help="Catalog id, registered id, models:/ URI or path."
    )
    quant.add_argument("--type", required=True, dest="ftype", help="File type, e.g. Q4_K_M.")
    quant.add_argument("--id", dest="model_id", help="Id of the new model (default FAMILY-TYPE).")
    quant.add_argument(
        "--output", type=Path, help="Where to write the GGUF (default artifacts/models/ID.gguf)."
    )
    quant.add_argument("--overwrite", action="store_true", help="Replace an existing target.")
    quant.add_argument("--threads", type=int, default=0, help="Threads (0: all cores).")
    _tracking(quant)
    promote = sub.add_parser("promote", help="Move an alias (champion) to a registered version.")
    promote.add_argument("ref", metavar="ID_OR_URI")
    promote.add_argument("--alias", default=CHAMPION, help="Alias to move (default champion).")
    promote.add_argument(
        "--force", action="store_true", help="Promote even if the latest compare flagged drift."
    )
    _tracking(promote)
    return sub


def _emit(result: Any) -> None:
    """The one JSON document on the last line of stdout."""
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def _table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="models")
    for column in ("id", "aliases", *_COLUMNS[1:], "flags"):
        table.add_column(column)
    for row in rows:
        flags = " ".join(f for f in ("default", "champion") if row.get(f))
        cells = {
            **row,
            "aliases": "\n".join(row.get("aliases") or []),
            "file_size": f"{row['file_size'] / 1e6:.1f} MB",
            "n_params": f"{row['n_params'] / 1e6:.1f} M" if row.get("n_params") else "",
            "sha256": str(row.get("sha256", ""))[:12],
            "flags": flags,
        }
        table.add_row(*(str(cells.get(c) or "") for c in ("id", "aliases", *_COLUMNS[1:], "flags")))
    Console(width=200).print(table)


def _quantize(args: argparse.Namespace, tracking_uri: str) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from models.lifecycle.actions import quantize_variant

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"quantising to {args.ftype.upper()}", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return quantize_variant(
            args.src,
            args.ftype,
            tracking_uri,
            model_id=args.model_id,
            output=args.output,
            overwrite=args.overwrite,
            threads=args.threads,
            progress=advance,
        )


def _dispatch(args: argparse.Namespace) -> int:
    tracking_uri = args.tracking_uri or tracking_uri_from_env()
    if args.models_command == "list":
        from models.lifecycle.inventory import list_models

        rows = list_models(tracking_uri)
        if args.json:
            _emit({"models": rows})
        else:
            _table(rows)
        return 0
    if args.models_command == "show":
        from models.lifecycle.inventory import show

        _emit(show(args.ref, tracking_uri))
        return 0
    if args.models_command == "quantize":
        _emit(_quantize(args, tracking_uri))
        return 0
    from models.lifecycle.actions import promote

    _emit(promote(args.ref, tracking_uri, alias=args.alias, force=args.force))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; a usage problem is one line on stderr and exit 2."""
    try:
        return _dispatch(args)
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"myllama models: {exc}\n")  # one plain line, as the other commands
        return 2

"""The `myllama` command: a thin dispatcher that imports a room only when its subcommand runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

log = logging.getLogger("myllama")


# ---- subcommands -------------------------------------------------------------

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    # name: (module with `configure(parser)` and `run(args)`, help)
    "serve": ("server.cli", "Run the OpenAI-compatible server."),
    "ui": ("ui.cli", "Run the Gradio UI (a client of the server)."),
    "up": ("ui.up", "Run the server and the UI together."),
    "train": ("models.predictors.cli", "Train the classical predictors and log them to MLflow."),
    "eval": ("eval.cli", "Offline evaluation: latency, output drift, tabular drift."),
    "models": ("models.lifecycle.cli", "The LLM's lifecycle: list, quantize, compare, promote."),
}
# Actions of a subcommand that live in another room: `models compare` runs the eval harness,
# so eval provides it (models never imports eval).
NESTED: dict[str, dict[str, tuple[str, str]]] = {
    "models": {"compare": ("eval.compare", "Serve two models, measure speed and output drift.")},
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="myllama", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            actions = module.configure(sub_parser)
            sub_parser.set_defaults(_run=module.run)
            for action, (action_module, action_help) in NESTED.get(name, {}).items():
                action_parser = actions.add_parser(action, help=action_help)
                if action in argv:
                    nested = importlib.import_module(action_module)
                    nested.configure(action_parser)
                    action_parser.set_defaults(_run=nested.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `myllama` console script."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    level = getattr(args, "log_level", None) or os.environ.get("MYLLAMA_LOG_LEVEL", "info")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        result = args._run(args)
    except (FileNotFoundError, ValueError) as exc:  # bad paths, settings or config: no traceback
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

"""`myllama eval run | tag-reference | drift`: the last stdout line is one JSON object."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from pydantic import ValidationError

from cli_settings import add_settings_flags, load_settings
from eval.settings import DriftSettings, EvalRunSettings, TagReferenceSettings


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the eval sub-subcommands and their flags."""
    sub = parser.add_subparsers(dest="eval_command", required=True, metavar="ACTION")
    run_parser = sub.add_parser(
        "run", help="Load-test the server, embed its answers, compare with the reference run."
    )
    add_settings_flags(run_parser, EvalRunSettings)
    tag = sub.add_parser("tag-reference", help="Make an eval run the reference of its prompt set.")
    tag.add_argument("run_id", metavar="RUN_ID")
    add_settings_flags(tag, TagReferenceSettings)
    drift = sub.add_parser(
        "drift",
        help="Drift of logged traffic: a predictor's against its training data (--predictor), "
        "or the LLM's answers and latency against a reference eval run (--llm).",
    )
    add_settings_flags(drift, DriftSettings)


def _emit(result: dict[str, Any]) -> None:
    """The one JSON object on the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(result, default=str), flush=True)


def _dispatch(args: argparse.Namespace) -> int:
    for noisy in ("httpx", "httpx2"):  # one INFO line per request would bury the progress bar
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.eval_command == "run":
        from eval.run import execute

        result, code = execute(load_settings(EvalRunSettings, args))
        _emit(result)
        return code
    if args.eval_command == "tag-reference":
        from mlflow.tracking import MlflowClient

        from eval.tracking import tag_reference

        tagging = load_settings(TagReferenceSettings, args)
        _emit(tag_reference(MlflowClient(tagging.tracking_uri), args.run_id))
        return 0
    settings = load_settings(DriftSettings, args)
    if settings.llm:
        from eval.llm_drift import execute as llm_drift

        _emit(llm_drift(settings))
    else:
        from eval.predictor_drift import execute as drift

        _emit(drift(settings))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; exit 0 whatever the verdict, 1 on an error, 2 on bad flags."""
    from eval.tracking import EvalError
    from prompts.sets import PromptSetError

    try:
        return _dispatch(args)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        print(f"myllama eval: {problems}", file=sys.stderr)
        return 2  # a usage problem, as argparse's own
    except (EvalError, PromptSetError) as exc:
        print(f"myllama eval: {exc}", file=sys.stderr)
    return 1

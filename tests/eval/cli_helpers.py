"""Running `myllama eval ...` as a real process and reading its last stdout line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import ROOT


def start_eval(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start `myllama eval ARGS` with extra environment `env` (stdout and stderr captured).

    `cwd`: where a new MLflow experiment puts its artefacts (./mlruns); default the checkout.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "myllama", "eval", *args],
        cwd=cwd or ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    """Wait; the exit code, the JSON object on the last stdout line, and stderr."""
    out, err = process.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, f"no stdout; stderr:\n{err[-3000:]}"
    return process.returncode, json.loads(lines[-1]), err


def eval_cli(
    args: list[str],
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, dict[str, Any], str]:
    """Run `myllama eval ARGS` to the end."""
    return finish(start_eval(args, env, cwd), timeout)


def eval_fails(args: list[str], timeout: float = 120, cwd: Path | None = None) -> tuple[int, str]:
    """Run `myllama eval ARGS` expected to fail: the exit code and stderr."""
    process = start_eval(args, cwd=cwd)
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err

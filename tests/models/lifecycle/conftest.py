"""A temp MLflow store with the default model quantised to Q4_0 and Q8_0 by the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FAMILY = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Done:
    """A finished `myllama models ...` process."""

    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """The JSON document on the last stdout line."""
        lines = self.out.strip().splitlines()
        assert lines, f"no stdout; stderr:\n{self.err[-3000:]}"
        return json.loads(lines[-1])


@dataclass(frozen=True)
class Store:
    """A folder holding a SQLite MLflow store (artefacts beside it) and the GGUFs written."""

    folder: Path

    @property
    def uri(self) -> str:
        """Its tracking URI."""
        return f"sqlite:///{self.folder}/mlflow.db"

    def env(self) -> dict[str, str]:
        """Environment of the processes using this store."""
        return {**os.environ, "HF_HUB_OFFLINE": "1", "MYLLAMA_TRACKING_URI": self.uri}

    def models(self, *args: str, timeout: float = 300) -> Done:
        """Run `myllama models ARGS` in the store's folder to the end."""
        done = subprocess.run(
            [sys.executable, "-m", "myllama", "models", *args],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Done(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """An empty store in a temp folder."""
    return Store(tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture(scope="session")
def variants(store: Store) -> dict[str, dict[str, Any]]:
    """The default Q4_1 model quantised to Q4_0 and Q8_0 and registered: type → command JSON."""
    out = {}
    for ftype in ("Q4_0", "Q8_0"):
        target = store.folder / "gguf" / f"{ftype.lower()}.gguf"
        done = store.models("quantize", FAMILY, "--type", ftype, "--output", str(target))
        assert done.code == 0, done.err[-3000:]
        out[ftype] = done.json
    return out


@pytest.fixture(scope="session")
def comparison(store: Store, variants: dict[str, dict[str, Any]]) -> Done:
    """`models compare` of the shipped model (A) against its Q8_0 (B), small and quick."""
    return store.models(
        "compare", FAMILY, variants["Q8_0"]["id"], "--prompts", "smoke", "--limit", "6",
        "--max-tokens", "8", "--concurrency", "1,2", "--permutations", "199",
    )  # fmt: skip

"""Print pyproject.toml's dependencies plus the chosen extras, one per line (a Docker layer)."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The base dependencies followed by those of each named extra; unknown extras are an error."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml has {sorted(optional)}")
    return [*project["dependencies"], *(req for extra in extras for req in optional[extra])]


def main() -> int:
    """Parse `pyproject.toml [EXTRAS]` (EXTRAS comma-separated) and print the requirements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("extras", nargs="?", default="", help="Extras, e.g. ui,eval.")
    args = parser.parse_args()
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    sys.stdout.write("".join(f"{req}\n" for req in requirements(args.pyproject, extras)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The shipped monitoring files: paths, the dashboard's PromQL and the metric names it uses."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import pytest

from tests.helpers import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_CONFIG = MONITORING / "prometheus" / "prometheus.yml"
RULES = sorted((MONITORING / "prometheus" / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((MONITORING / "prometheus" / "tests").glob("*.yml"))
DASHBOARD = MONITORING / "grafana" / "dashboards" / "myllama.json"

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def binary(name: str) -> str:
    """The path of a Debian `prometheus` package binary (make test installs the package)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install Debian's prometheus package (`make test` does)")
    return path


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, labels, keywords left out)."""
    bare = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", _STRINGS.sub(" ", expr))))
    return {
        name
        for name, call in _IDENTIFIER.findall(bare)
        if not call and name.lower() not in _KEYWORDS
    }


def panel_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel of the dashboard."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]

"""The HTML drift report in Debian's Chromium: self-contained, verdict first, no JS needed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from eval import plots, report
from eval.tabular_drift import feature_tests
from eval.verdict import decide
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is missing: run `make chromium` (apt-get install chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of a real comparison: age shifted by 15 years, colour unchanged."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"age": rng.normal(40, 12, 2000), "colour": rng.choice(["red", "blue"], 2000)}
    )
    current = pd.DataFrame(
        {"age": rng.normal(55, 12, 300), "colour": rng.choice(["red", "blue"], 300)}
    )
    verdict = decide(feature_tests(reference, current, ["age", "colour"]), 0.05, {"rows": 300})
    figures = {
        f"feature:{c}": plots.distribution_figure(c, reference[c], current[c], kind)
        for c, kind in (("age", "numeric"), ("colour", "categorical"))
    }
    page = report.render("Drift of a test table", verdict, {"reference": "run-123"}, figures)
    return report.write(page, tmp_path_factory.mktemp("report") / report.REPORT_FILE)


def test_the_verdict_shows_first_without_javascript_or_network(
    chromium: Browser, page_file: Path
) -> None:
    """JS off, every request recorded: only the file itself loads; verdict, parts and plots show."""
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    verdict = page.locator("#verdict")
    expect(verdict).to_be_visible()
    expect(verdict).to_have_text("Verdict: drift")
    box = verdict.bounding_box()
    assert box is not None and box["y"] < 100  # the first thing on the page
    expect(page.locator("#reason")).to_contain_text("feature age")
    expect(page.locator("section")).to_have_count(2)
    expect(page.locator("section svg")).to_have_count(2)
    expect(page.locator("section#feature-age")).to_contain_text("p-value, Holm-adjusted")
    expect(page.get_by_text("run-123")).to_be_visible()
    assert requests == [page_file.as_uri()]
    context.close()

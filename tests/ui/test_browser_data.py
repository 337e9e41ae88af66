"""Predictor start values, CSV scoring with a download, and the Drift tab, in a real Chromium."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import API_KEY
from tests.eval.cli_helpers import eval_cli
from tests.ui.conftest import ARTIFACTS, Stack
from tests.ui.test_browser import field, open_predictor, open_tab, predictor_specs
from tests.ui.test_scoring import IRIS, iris_frame

pytestmark = pytest.mark.browser


def test_iris_form_starts_inside_the_training_range_and_predicts(page: Page, stack: Stack) -> None:
    """Untouched, every iris field holds a value inside its training range; Predict answers."""
    spec = predictor_specs(stack.server_url)["iris"]
    open_predictor(page, "iris")
    for feature in IRIS:
        low, high = re.findall(
            r"[\d.]+", spec["input_schema"]["properties"][feature]["description"]
        )[-2:]
        box = field(page, "iris", feature)
        expect(box).not_to_have_value("")
        expect(box).to_be_editable()
        assert float(low) <= float(box.input_value()) <= float(high), feature
    page.locator("#iris-predict").click()
    expect(page.locator("#iris-label")).to_contain_text("Predicted:", timeout=90_000)


def test_a_csv_is_scored_and_offered_for_download(page: Page, stack: Stack, tmp_path: Path) -> None:
    """150 iris rows, one bad: the row is named, the first rows show, the file downloads."""
    frame = iris_frame().astype({"sepal_width": object})
    frame.loc[2, "sepal_width"] = "wide"
    upload = tmp_path / "iris-upload.csv"
    frame.to_csv(upload, index=False)
    open_predictor(page, "iris")  # the predictors are loaded
    expect(page.locator("#csv-about")).to_contain_text("every feature of iris")  # first chosen
    page.locator("#csv-file input[type=file]").set_input_files(upload)
    # Uploaded, not uploading: the file's row links to the server's copy. (Its text is no test:
    # "iris-upload.csv" while uploading, then "iris-upload .csv", stem and extension apart.)
    uploaded = page.locator("#csv-file").get_by_role("cell", name="iris-upload.csv", exact=True)
    expect(uploaded).to_be_visible(timeout=60_000)
    expect(page.locator("#csv-file").get_by_test_id("download-link")).to_have_attribute(
        "href", re.compile(r"/file=.+/iris-upload\.csv$")
    )
    page.locator("#csv-score").click()
    status = page.locator("#csv-status")
    expect(status).to_contain_text("Scored 149 of 150 row(s).", timeout=120_000)
    expect(status).to_contain_text("row 3 (line 4): sepal_width: expected a number, got 'wide'")
    expect(page.locator("#csv-rows")).to_contain_text("setosa")
    with page.expect_download() as download:
        page.locator("#csv-download").click()
    scored = pd.read_csv(download.value.path(), keep_default_na=False)
    assert len(scored) == 150 and download.value.suggested_filename == "iris-scored.csv"
    assert list(scored.columns[:5]) == [*IRIS, "species"]
    assert scored.loc[2, "error"].startswith("sepal_width: expected a number")
    good = scored[scored["error"] == ""]
    assert len(good) == 149 and (good["prediction"] == good["species"]).mean() > 0.9
    page.screenshot(path=ARTIFACTS / "predictor-csv.png", full_page=True)


def logged(prediction_log: Path) -> int:
    """Iris predictions the server has written to its log so far."""
    if not prediction_log.exists():
        return 0
    with sqlite3.connect(prediction_log) as db:
        return int(
            db.execute("SELECT count(*) FROM predictions WHERE predictor = 'iris'").fetchone()[0]
        )


def test_the_drift_tab_shows_a_real_drift_run(page: Page, stack: Stack) -> None:
    """Served traffic, then `myllama eval drift --predictor iris`: the tab lists the run, its
    verdict, per-feature tests and the HTML report."""
    records = iris_frame()[IRIS].to_dict(orient="records")
    before = logged(stack.prediction_log)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    answer = httpx.post(
        f"{stack.server_url}/v1/predict/iris", json={"inputs": records}, headers=headers, timeout=60
    )
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30  # the log's writer commits within its flush interval
    while logged(stack.prediction_log) < before + len(records):
        assert time.monotonic() < deadline, "the server did not write its prediction log"
        time.sleep(0.1)
    code, result, err = eval_cli(
        [
            "drift",
            "--predictor",
            "iris",
            "--prediction-log",
            str(stack.prediction_log),
            "--tracking-uri",
            stack.tracking_uri,
        ],
        cwd=stack.prediction_log.parent,
    )
    assert code in (0, 1), err[-2000:]  # 1: drift found; either way a run was logged
    open_tab(page, "tab-drift")
    runs = page.locator("#drift-runs")
    expect(runs).to_contain_text("drift-iris", timeout=120_000)
    verdict = page.locator("#drift-verdict")
    expect(verdict).to_contain_text(result["run_id"], timeout=60_000)
    expect(verdict).to_contain_text(re.compile("no drift|drift|insufficient data"))
    parts = page.locator("#drift-parts")
    for feature in IRIS:
        expect(parts).to_contain_text(feature)
    report = page.frame_locator("#drift-report iframe")
    expect(report.locator("body")).to_contain_text("iris")
    expect(page.locator("#drift-report-file")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "drift.png", full_page=True)

"""Browser-test fixtures: Debian's Chromium, a server with trained predictors, the UI in front."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import API_KEY
from tests.helpers import ROOT, free_port, running_myllama

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
UI_LOGIN = ("tester", "correct horse: battery")  # the stack's UI asks for it (MYLLAMA_UI_USERS)
SCREENSHOTS_TAKEN = pytest.StashKey[bool]()


@dataclass(frozen=True)
class Stack:
    """The server and the UI under test, and the MLflow store and prediction log they use."""

    server_url: str
    ui_url: str
    tracking_uri: str
    prediction_log: Path


def wait_for_predictors(server_url: str, timeout: float = 120.0) -> None:
    """Poll /v1/predictors until the server has loaded them (they load after /health is up)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    deadline = time.monotonic() + timeout
    while httpx.get(f"{server_url}/v1/predictors", headers=headers).status_code == 503:
        if time.monotonic() > deadline:
            raise TimeoutError(f"predictors not loaded after {timeout}s")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Predictors trained by the real CLI into a temp store, the server, the UI with a login."""
    work = tmp_path_factory.mktemp("ui-stack")
    store = ["--tracking-uri", f"sqlite:///{work}/mlflow.db"]
    store += ["--predictors-dir", str(work / "predictors")]
    subprocess.run(
        [sys.executable, "-m", "myllama", "train", "all", *store],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    server_port, ui_port = free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    serve = ["serve", "--port", str(server_port), "--api-key", API_KEY, *store]
    serve += ["--prediction-log", str(work / "predictions.db")]
    ui = ["ui", "--port", str(ui_port), "--server-url", server_url, "--api-key", API_KEY]
    ui += ["--tracking-uri", store[1]]
    ui_url = f"http://127.0.0.1:{ui_port}"
    logins = {"MYLLAMA_UI_USERS": f"someone:else,{UI_LOGIN[0]}:{UI_LOGIN[1]}"}
    with (
        running_myllama(serve, f"{server_url}/health"),
        running_myllama(ui, f"{ui_url}/", env=logins, log_name="ui"),
    ):
        wait_for_predictors(server_url)
        yield Stack(server_url, ui_url, store[1], work / "predictions.db")


@pytest.fixture(scope="module")
def chromium(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API holds an event loop while it runs, which would
    break asyncio.run in the tests collected after the browser tests.
    """
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is missing: run `make chromium` (apt-get install chromium).")
    request.config.stash[SCREENSHOTS_TAKEN] = True
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the screenshot folder at the end of every run that drove the browser, passing or not."""
    if config.stash.get(SCREENSHOTS_TAKEN, False):
        terminalreporter.write_line(f"UI screenshots: {ARTIFACTS}")


def open_ui(browser: Browser, url: str) -> Page:
    """A fresh page on the UI."""
    page = browser.new_page(viewport={"width": 1280, "height": 960})
    page.goto(url)
    return page


def sign_in(page: Page, user: str, password: str) -> None:
    """Fill Gradio's login page and submit it."""
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


@pytest.fixture
def page(chromium: Browser, stack: Stack) -> Iterator[Page]:
    """The UI, signed in and connected to the server."""
    page = open_ui(chromium, stack.ui_url)
    sign_in(page, *UI_LOGIN)
    expect(page.locator("#server-status")).to_contain_text("Connected", timeout=60_000)
    yield page
    page.close()

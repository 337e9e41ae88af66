"""Browser-test fixtures: Debian's Chromium, a server with trained predictors, the UI in front."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Error, Page, expect, sync_playwright

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
FAILURES = ARTIFACTS / "failures"  # trace, screenshots and console of every failed browser test
UI_LOGIN = ("tester", "correct horse: battery")  # the stack's UI asks for it (MYLLAMA_UI_USERS)
SCREENSHOTS_TAKEN = pytest.StashKey[bool]()
_CONSOLES: dict[int, list[str]] = {}  # id(context) -> what its pages logged


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


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context recording a Playwright trace and its console, kept if the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 960}, **options)
    context.tracing.start(screenshots=True, snapshots=True)
    console = _CONSOLES.setdefault(id(context), [])
    context.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    context.on("weberror", lambda error: console.append(f"page error: {error.error}"))
    return context


def keep_failure_artifacts(browser: Browser, test: str) -> Path:
    """Each open context's trace, a screenshot of each page and the console, for one failure."""
    name = re.sub(r"[^\w.-]", "_", test)
    folder = FAILURES / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, context in enumerate(browser.contexts):
        for j, page in enumerate(context.pages):
            try:
                page.screenshot(path=folder / f"page-{i}-{j}.png", full_page=True, timeout=10_000)
            except Error as exc:
                (folder / f"page-{i}-{j}.txt").write_text(f"no screenshot: {exc}\n")
        console = _CONSOLES.get(id(context), [])
        (folder / f"console-{i}.txt").write_text("\n".join(console) + "\n")
        try:
            context.tracing.stop(path=folder / f"trace-{i}.zip")  # `playwright show-trace` it
        except Error as exc:
            (folder / f"trace-{i}.txt").write_text(f"no trace: {exc}\n")
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A browser test that fails (or whose page fixture does) leaves its trace and screenshots."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed and report.when in ("setup", "call") and "chromium" in funcargs:
        folder = keep_failure_artifacts(funcargs["chromium"], item.name)
        report.sections.append(("browser artifacts", str(folder)))
    return report


def open_ui(browser: Browser, url: str) -> Page:
    """A fresh page, in a traced context of its own, on the UI (close it with page.context)."""
    page = new_context(browser).new_page()
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
    page.context.close()

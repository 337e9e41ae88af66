"""The UI in a real Chromium, against the real server with the real model and trained predictors."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY
from tests.helpers import free_port, running_myllama
from tests.ui.conftest import ARTIFACTS, UI_LOGIN, Stack, open_ui, sign_in

pytestmark = pytest.mark.browser

STATS = re.compile(r"TTFT (\d+\.\d\d) s · (\d+\.\d|–) tok/s · (\d+) tokens")


def running_requests(server_url: str) -> float:
    """The server's myllama_requests_running gauge, summed over models."""
    text = httpx.get(f"{server_url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "myllama_requests_running"
        for sample in family.samples
    )


def predictor_specs(server_url: str) -> dict[str, dict[str, Any]]:
    """The predictors as the server describes them."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    body = httpx.get(f"{server_url}/v1/predictors", headers=headers, timeout=10).json()
    return {spec["name"]: spec for spec in body["data"]}


def open_tab(page: Page, elem_id: str) -> None:
    """Click the tab with this elem_id and wait until it is selected and its panel shows.

    By id, never by label: the UI gives every tab an elem_id (its button is "#<id>-button"), so
    the locator is exactly one element, and strict mode reports any duplicate as the bug it is.
    """
    button = page.locator(f"#{elem_id}-button")
    button.click()
    expect(button).to_have_attribute("aria-selected", "true")
    expect(page.locator(f"#{elem_id}")).to_be_visible()


def send(page: Page, text: str) -> None:
    """Type a message and press Enter."""
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")


def test_chat_streams_an_answer_and_shows_its_figures(page: Page) -> None:
    """A library prompt, temperature 0: the answer grows piece by piece, then its figures show."""
    page.get_by_label("System prompt (library)").click()
    page.get_by_role("option", name="teacher", exact=True).filter(visible=True).click()
    expect(page.locator("#system-prompt textarea")).to_have_value(re.compile("patient teacher"))
    page.get_by_label("number input for Temperature").fill("0")
    page.get_by_label("number input for Temperature").press("Enter")
    send(page, "Explain how a rainbow forms.")
    stats = page.locator("#chat-stats")
    expect(stats).to_contain_text("streaming…", timeout=60_000)  # pieces arrive one by one
    bot = page.get_by_test_id("bot").last
    expect(bot).to_have_text(re.compile(r"\w"))  # real text, no longer the "…" placeholder
    partial = bot.inner_text().split()
    expect(stats).to_contain_text("tokens", timeout=120_000)
    final = bot.inner_text().split()
    assert len(final) > len(partial) >= 1  # captured mid-answer, and the answer went on
    settled = partial[:-1]  # the last word may still have been cut or half-formatted
    assert final[: len(settled)] == settled
    figures = STATS.search(stats.inner_text())
    assert figures, stats.inner_text()
    assert float(figures.group(1)) > 0 and int(figures.group(3)) >= 1
    expect(page.get_by_test_id("user").last).to_have_text("Explain how a rainbow forms.")
    page.screenshot(path=ARTIFACTS / "chat.png", full_page=True)

    page.locator("#clear").click()
    expect(page.get_by_test_id("bot")).to_have_count(0)


def test_stop_closes_the_request_and_frees_the_slot(page: Page, stack: Stack) -> None:
    """Stop mid-answer: the server's running-request gauge drops to 0, the partial answer stays."""
    page.get_by_label("number input for Max tokens").fill("1536")
    page.get_by_label("number input for Max tokens").press("Enter")
    send(page, "Write a very long story about a dragon who learns to bake bread.")
    expect(page.locator("#chat-stats")).to_contain_text("streaming…", timeout=60_000)
    assert running_requests(stack.server_url) >= 1
    page.locator("#stop").click()
    # The Stop handler goes through Gradio's queue: allow for a busy machine.
    expect(page.locator("#chat-stats")).to_contain_text("Stopped", timeout=20_000)
    deadline = time.monotonic() + 10
    while running_requests(stack.server_url) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_requests(stack.server_url) == 0
    assert page.get_by_test_id("bot").last.inner_text().strip()  # the partial answer stays
    page.screenshot(path=ARTIFACTS / "chat-stopped.png", full_page=True)


def open_predictor(page: Page, name: str) -> None:
    """Go to the Predictors tab and one predictor's sub-tab (waiting for the server's list).

    Then wait for the last event the list sets off (the CSV panel describing its predictor): a
    click while the page's load events still ran was now and then never answered.
    """
    open_tab(page, "tab-predictors")
    open_tab(page, f"tab-{name}")
    expect(page.locator("#csv-about")).to_contain_text("every feature of", timeout=60_000)


def field(page: Page, predictor: str, feature: str) -> Any:
    """The input element of one form field."""
    return page.locator(f'[id="{predictor}-{feature}"]').locator("input").first


def test_iris_form_predicts_a_species(page: Page, stack: Stack) -> None:
    """Four setosa measurements: the label says setosa, the chart has a bar per class."""
    spec = predictor_specs(stack.server_url)["iris"]
    open_predictor(page, "iris")
    measures = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert set(spec["input_schema"]["properties"]) == set(measures)
    for feature, value in measures.items():
        field(page, "iris", feature).fill(str(value))
    page.locator("#iris-predict").click()
    label = page.locator("#iris-label")
    expect(label).to_contain_text("Predicted: setosa", timeout=90_000)
    expect(page.locator("#iris-chart .mark-rect path")).to_have_count(len(spec["classes"]))
    page.screenshot(path=ARTIFACTS / "iris.png", full_page=True)


def pick(page: Page, predictor: str, feature: str, value: Any) -> None:
    """Choose a value in a dropdown."""
    box = field(page, predictor, feature)
    box.click()
    options = page.locator(f'[id="{box.get_attribute("aria-controls")}"]')
    options.get_by_role("option", name=str(value), exact=True).click()


def fill_from_schema(page: Page, predictor: str, spec: dict[str, Any]) -> None:
    """Fill every field with a valid value taken from the schema itself."""
    for feature, schema in spec["input_schema"]["properties"].items():
        if "enum" in schema:
            pick(page, predictor, feature, schema["enum"][len(schema["enum"]) // 2])
        else:
            middle = (schema["minimum"] + schema["maximum"]) / 2
            value = round(middle) if schema["type"] == "integer" else round(middle, 2)
            field(page, predictor, feature).fill(str(value))
    for feature, schema in spec["input_schema"]["properties"].items():
        if "enum" not in schema:
            middle = (schema["minimum"] + schema["maximum"]) / 2
            value = round(middle) if schema["type"] == "integer" else round(middle, 2)
            expect(field(page, predictor, feature)).to_have_value(str(value))


@pytest.mark.parametrize("name", ["income", "churn"])
def test_form_built_from_the_schema_predicts_a_class(page: Page, stack: Stack, name: str) -> None:
    """The form starts at the training medians/modes and predicts as it stands; filled from the
    schema it predicts again: a class and its chart."""
    spec = predictor_specs(stack.server_url)[name]
    open_predictor(page, name)
    page.locator(f"#{name}-predict").click()  # every field starts at its schema default
    expect(page.locator(f"#{name}-label")).to_contain_text("Predicted:", timeout=90_000)
    fill_from_schema(page, name, spec)
    page.locator(f"#{name}-predict").click()
    label = page.locator(f"#{name}-label")
    expect(label).to_contain_text("Predicted:", timeout=90_000)
    predicted = label.inner_text().split("Predicted:")[1].split("(")[0].strip()
    assert predicted in [str(c) for c in spec["classes"]]
    expect(page.locator(f"#{name}-chart .mark-rect path")).to_have_count(len(spec["classes"]))
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def test_ui_starts_without_a_server_and_says_so(chromium: Browser) -> None:
    """No server: the UI still starts, says so, and keeps the unsent message for a retry."""
    port, dead = free_port(), f"http://127.0.0.1:{free_port()}"
    args = ["ui", "--port", str(port), "--server-url", dead, "--timeout", "3"]
    with running_myllama(args, f"http://127.0.0.1:{port}/", log_name="ui-down"):
        page = open_ui(chromium, f"http://127.0.0.1:{port}")
        expect(page.locator("#server-status")).to_contain_text(
            f"Not connected. Cannot reach the server at {dead}", timeout=30_000
        )
        send(page, "hello?")
        expect(page.locator("#chat-stats")).to_contain_text("Error: Cannot reach the server")
        expect(page.locator("#chat-input textarea")).to_have_value("hello?")  # kept for a retry
        open_tab(page, "tab-predictors")
        expect(page.locator("#predictors-status")).to_contain_text("Cannot reach the server")
        page.screenshot(path=ARTIFACTS / "server-down.png", full_page=True)
        assert "Traceback" not in page.content()
        page.context.close()


def test_the_ui_asks_for_a_login(chromium: Browser, stack: Stack) -> None:
    """Login page first; a wrong password is refused (the API too); the right one reaches chat."""
    page = open_ui(chromium, stack.ui_url)
    expect(page.get_by_role("button", name="Login")).to_be_visible(timeout=60_000)
    expect(page.locator("#server-status")).to_have_count(0)
    assert httpx.get(f"{stack.ui_url}/config", timeout=10).status_code == 401
    user, password = UI_LOGIN
    sign_in(page, user, password + "x")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible()
    expect(page.locator("#server-status")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "login-refused.png", full_page=True)
    sign_in(page, user, password)
    expect(page.locator("#server-status")).to_contain_text("Connected", timeout=60_000)
    send(page, "Say hello.")
    # Sampled at the default temperature: the answer may be emoji only (seen in CI), so any
    # character but the "…" placeholder counts as an answer.
    answered = re.compile(r"[^\s…]")
    expect(page.get_by_test_id("bot").last).to_have_text(answered, timeout=60_000)
    page.context.close()

"""Chat actions in a real Chromium on the real server: retry, like, edit, undo, copy, history."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import ARTIFACTS, UI_LOGIN, Stack, new_context, sign_in
from tests.ui.test_browser import send
from ui.traces import ASSESSMENT

pytestmark = pytest.mark.browser

FINAL = re.compile(r"TTFT \d+\.\d\d s")  # the stats line once an answer is complete


@pytest.fixture
def page(chromium: Browser, stack: Stack) -> Iterator[Page]:
    """The UI signed in, allowed to use the clipboard, answers kept short."""
    context = new_context(chromium, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(stack.ui_url)
    sign_in(page, *UI_LOGIN)
    expect(page.locator("#server-status")).to_contain_text("Connected", timeout=60_000)
    page.get_by_label("number input for Max tokens").fill("32")
    page.get_by_label("number input for Max tokens").press("Enter")
    yield page
    context.close()


def answered(page: Page, count: int) -> None:
    """Wait until `count` answers show and the last one is complete (its figures shown)."""
    expect(page.get_by_test_id("bot")).to_have_count(count, timeout=120_000)
    expect(page.locator("#chat-stats")).to_contain_text(FINAL, timeout=120_000)


def bot_button(page: Page, label: str) -> None:
    """Click one of the chatbot's own message buttons (the last message's)."""
    page.locator("#chatbot").get_by_role("button", name=label, exact=True).last.click()


def feedback_in_store(tracking_uri: str) -> list[tuple[object, str, str]]:
    """(verdict, who, answer) of every like/dislike the UI wrote to the store, oldest first."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name("myllama-chat-feedback")
    if found is None:
        return []
    traces = client.search_traces(locations=[found.experiment_id], order_by=["timestamp_ms ASC"])
    return [
        (a.value, a.source.source_id, t.data.spans[0].outputs["answer"])
        for t in traces
        for a in t.info.assessments
        if a.name == ASSESSMENT
    ]


def test_like_retry_dislike_copy_edit_undo(page: Page, stack: Stack) -> None:
    """Each chatbot button does its job on the real model; likes and dislikes land in MLflow.

    Each action that answers again follows one that changed the stats line, so waiting for the
    figures again waits for the new answer.
    """
    before = len(feedback_in_store(stack.tracking_uri))
    send(page, "Name a colour.")
    answered(page, 1)
    stats = page.locator("#chat-stats")

    bot_button(page, "Like")
    expect(stats).to_contain_text("Like recorded in MLflow", timeout=120_000)
    (liked,) = feedback_in_store(stack.tracking_uri)[before:]
    assert liked[:2] == (True, UI_LOGIN[0]) and liked[2].strip()

    bot_button(page, "Retry")  # a new answer to the same question replaces the old one
    answered(page, 1)
    expect(page.get_by_test_id("user")).to_have_count(1)
    assert page.get_by_test_id("user").last.inner_text() == "Name a colour."

    bot_button(page, "Dislike")
    expect(stats).to_contain_text("Dislike recorded in MLflow", timeout=120_000)
    disliked = feedback_in_store(stack.tracking_uri)[-1]
    assert disliked[:2] == (False, UI_LOGIN[0])
    bot_button(page, "Copy message")  # the raw answer, as the server sent it
    page.wait_for_function(
        "async (want) => (await navigator.clipboard.readText()) === want", arg=disliked[2]
    )

    page.get_by_test_id("user").last.hover()
    bot_button(page, "Edit")
    page.locator("#chatbot textarea").fill("Name a fruit.")
    bot_button(page, "Submit")
    expect(page.get_by_test_id("user").last).to_have_text("Name a fruit.", timeout=60_000)
    answered(page, 1)
    expect(page.get_by_test_id("user")).to_have_count(1)
    page.screenshot(path=ARTIFACTS / "chat-actions.png", full_page=True)

    bot_button(page, "Undo")  # the exchange goes, its question comes back to the box
    expect(page.get_by_test_id("bot")).to_have_count(0)
    expect(page.locator("#chat-input textarea")).to_have_value("Name a fruit.")


def test_conversations_are_saved_and_reopened(page: Page) -> None:
    """Two chats: both listed newest first; the older reopens, also after a reload."""
    send(page, "Say one word about the sea.")
    answered(page, 1)
    first_answer = page.get_by_test_id("bot").last.inner_text()
    saved = page.locator("#saved-chats")
    expect(saved).to_contain_text("Say one word about the sea.")
    page.locator("#new-chat").click()
    expect(page.get_by_test_id("bot")).to_have_count(0)
    send(page, "Say one word about the moon.")
    answered(page, 1)
    expect(saved.locator("button.gallery-item")).to_have_count(2)  # one per conversation
    expect(saved.locator("button.gallery-item").first).to_contain_text("moon")  # newest first
    page.reload()  # the login cookie stays: the app itself comes back
    expect(page.locator("#saved-chats")).to_contain_text(
        "Say one word about the moon.", timeout=60_000
    )
    page.locator("#saved-chats").get_by_text("Say one word about the sea.").click()
    expect(page.get_by_test_id("user").last).to_have_text("Say one word about the sea.")
    expect(page.get_by_test_id("bot").last).to_have_text(first_answer)
    page.screenshot(path=ARTIFACTS / "chat-history.png", full_page=True)

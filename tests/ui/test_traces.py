"""Chat answers as MLflow traces in a real store: opt-in traces of every answer, likes on them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import gradio as gr
from mlflow import MlflowClient

from prompts.library import load_library
from tests.conftest import Server
from ui.chat import ChatTab
from ui.client import ServerClient
from ui.traces import ASSESSMENT, CHAT, RATED, Exchange, rate, trace


def traces_of(store: str, experiment: str) -> list:
    """Every trace of one experiment, oldest first ([] if it does not exist)."""
    client = MlflowClient(store)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_traces([found.experiment_id], order_by=["timestamp_ms ASC"])


def verdicts(trace: object) -> list[tuple[object, str]]:
    """(value, who) of each like/dislike on a trace."""
    return [
        (a.value, a.source.source_id)
        for a in trace.info.assessments  # type: ignore[attr-defined]
        if a.name == ASSESSMENT
    ]


def test_an_exchange_becomes_a_timed_trace_that_takes_verdicts(tmp_path: Path) -> None:
    """The trace keeps the messages, answer, model facts, figures, user, session and timing."""
    store = f"sqlite:///{tmp_path}/mlflow.db"
    asked = [{"role": "user", "content": "Name a colour."}]
    start = 1_700_000_000_000_000_000
    exchange = Exchange(
        "smollm2",
        asked,
        "Blue.",
        "alice",
        "session-1",
        {"file_sha256": "ab" * 32},
        {"ttft_s": 0.25, "completion_tokens": 3},
        (start, start + 1_500_000_000),
    )
    trace_id = trace(store, "chats", exchange, CHAT)
    rate(store, trace_id, True, "alice")
    rate(store, trace_id, False, "bob")

    (stored,) = traces_of(store, "chats")
    assert stored.info.trace_id == trace_id
    assert sorted(verdicts(stored), key=str) == [(False, "bob"), (True, "alice")]
    assert stored.info.tags["myllama.kind"] == CHAT and stored.info.tags["model"] == "smollm2"
    assert stored.info.trace_metadata["mlflow.trace.user"] == "alice"
    assert stored.info.trace_metadata["mlflow.trace.session"] == "session-1"
    assert stored.info.execution_duration == 1500  # ms: the answer's own timing
    (span,) = stored.data.spans
    assert span.inputs == {"model": "smollm2", "messages": asked}
    assert span.outputs == {"answer": "Blue."}
    assert span.attributes["model.file_sha256"] == "ab" * 32
    assert span.attributes["ttft_s"] == 0.25 and span.attributes["completion_tokens"] == 3


def test_opt_in_chat_traces_every_answer_and_a_like_lands_on_it(
    server: Server, tmp_path: Path
) -> None:
    """With a chat experiment, two answers are two traces; a like attaches to the right one."""
    store = f"sqlite:///{tmp_path}/mlflow.db"
    client = ServerClient(server.url, server.api_key, timeout=60)
    tab = ChatTab(client, load_library(), store, "feedback", chat_experiment="chats")
    session = gr.Request(username="carol", session_hash="s1")
    settings = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 24.0}

    async def chat_then_like() -> tuple[list[dict[str, str]], str]:
        history: list[dict[str, str]] = []
        for question in ("Name a colour.", "Name a fruit."):
            updates = tab.respond(question, history, None, "Be brief.", **settings, request=session)
            history = [update async for update in updates][-1][1]
        like = gr.LikeData(None, {"index": 1, "value": history[1]["content"], "liked": True})
        note = await tab.like(like, history, None, session)
        await asyncio.gather(*tab._traced.values())  # the second answer's trace, too
        return history, note

    history, note = asyncio.run(chat_then_like())
    assert note.startswith("Like recorded in MLflow (experiment `chats`"), note
    first, second = traces_of(store, "chats")
    assert traces_of(store, "feedback") == []  # the like found the answer's own trace
    for stored, at in ((first, 1), (second, 3)):
        assert stored.info.tags["myllama.kind"] == CHAT
        assert stored.info.trace_metadata["mlflow.trace.user"] == "carol"
        (span,) = stored.data.spans
        assert span.outputs == {"answer": history[at]["content"]}
        assert span.inputs["messages"][0] == {"role": "system", "content": "Be brief."}
        assert span.attributes["completion_tokens"] >= 1
        assert 0 < span.attributes["ttft_s"] <= span.attributes["e2e_s"]
    assert verdicts(first) == [(True, "carol")] and verdicts(second) == []
    assert f"trace `{first.info.trace_id}`" in note


def test_without_chat_traces_a_like_writes_its_own_trace(server: Server, tmp_path: Path) -> None:
    """The default: nothing is traced until a like, which writes the exchange and the verdict."""
    store = f"sqlite:///{tmp_path}/mlflow.db"
    tab = ChatTab(ServerClient(server.url, server.api_key, timeout=60), load_library(), store, "fb")
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    dislike = gr.LikeData(None, {"index": 1, "value": "Hello!", "liked": False})
    note = asyncio.run(tab.like(dislike, history, None, gr.Request()))
    assert note.startswith("Dislike recorded in MLflow (experiment `fb`"), note
    (stored,) = traces_of(store, "fb")
    assert stored.info.tags["myllama.kind"] == RATED
    assert verdicts(stored) == [(False, "anonymous")]
    assert stored.data.spans[0].inputs["messages"] == history[:1]

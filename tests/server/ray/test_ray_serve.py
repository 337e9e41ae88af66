"""`myllama serve --ray --replicas 2` on a real local Ray instance: the same API on replicas."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.server.ray.conftest import (
    RayServer,
    per_replica,
    ray_serving,
    replicas,
    sse_events,
    wait_until,
)

pytestmark = pytest.mark.ray
log = logging.getLogger(__name__)

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Count from one to twenty in words."}
]
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"  # the model keeps counting: long, steady streams


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, iris: tuple[str, Path]) -> Iterator[RayServer]:
    """Two engine replicas of one thread each, the predictors as their own deployment."""
    work = tmp_path_factory.mktemp("ray-serve")
    with ray_serving(work, iris, ["--replicas", "2"], "ray-server") as running:
        wait_until(lambda: len(replicas(running)) == 2, 60, "two replicas in /metrics")
        yield running


def finished(server: RayServer, reason: str | None = None) -> dict[str, float]:
    """Requests each replica has finished (all reasons, or one)."""
    match = {"reason": reason} if reason else {}
    return per_replica(server, "myllama_replica_requests_finished_total", **match)


async def _stream(client: openai.AsyncOpenAI, max_tokens: int) -> tuple[str, str | None]:
    stream = await client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=MESSAGES,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    )
    text, reason = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            reason = chunk.choices[0].finish_reason or reason
    return text, reason


def test_sixteen_streams_complete_on_both_replicas(server: RayServer) -> None:
    """16 concurrent streams through the official SDK all finish; both replicas served some."""
    before = finished(server)

    async def run() -> list[tuple[str, str | None]]:
        client = openai.AsyncOpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
        async with client:
            return await asyncio.gather(*(_stream(client, 24) for _ in range(16)))

    started = time.monotonic()
    results = asyncio.run(run())
    log.info("16 streams through Ray in %.1f s", time.monotonic() - started)
    assert all(reason in ("stop", "length") and text for text, reason in results)
    assert len({text for text, _ in results}) == 1  # temperature 0: the same answer everywhere

    def served() -> dict[str, float]:
        after = finished(server)
        return {r: after[r] - before.get(r, 0.0) for r in after}

    wait_until(lambda: sum(served().values()) >= 16, 30, "16 requests counted per replica")
    counts = served()
    print("requests per replica:", counts)
    assert len([r for r, n in counts.items() if n > 0]) == 2


def test_streamed_equals_non_streamed(server: RayServer) -> None:
    """At temperature 0 the streamed answer is the non-streamed one, whichever replica serves."""
    client = openai.OpenAI(base_url=server.v1, api_key=server.api_key, max_retries=0)
    whole = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=MESSAGES, max_tokens=32, temperature=0
    )
    pieces = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=MESSAGES,
        max_tokens=32,
        temperature=0,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
    assert text == whole.choices[0].message.content
    assert whole.usage is not None and whole.usage.completion_tokens > 0


def test_engine_errors_keep_their_status(server: RayServer) -> None:
    """An engine refusal raised on a replica reaches the client with the single-server status."""
    long_prompt = "word " * 2000  # over the 512-token context
    response = httpx.post(
        f"{server.v1}/completions",
        json={"model": "smollm2-135m-instruct", "prompt": long_prompt, "max_tokens": 8},
        headers=server.headers(),
        timeout=60,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and set(error) == {
        "message",
        "type",
        "param",
        "code",
    }
    unauthorized = httpx.get(f"{server.v1}/models", timeout=10)
    assert unauthorized.status_code == 401


def test_a_full_queue_answers_429(server: RayServer) -> None:
    """Past 2 replicas x 4 slots and 16 waiting in Ray's queue, requests get the engine's 429.

    Ray counts a request as queued until it is assigned to a replica, so in a burst a few can be
    refused before every slot has filled: the queue's 16 are the bound that always holds.
    """

    async def run() -> list[httpx.Response]:
        body = {"model": "smollm2-135m-instruct", "prompt": COUNTING, "max_tokens": 48}
        async with httpx.AsyncClient(timeout=300, headers=server.headers()) as client:
            calls = (client.post(f"{server.v1}/completions", json=body) for _ in range(40))
            return await asyncio.gather(*calls)

    responses = asyncio.run(run())
    statuses = [r.status_code for r in responses]
    print("statuses:", {s: statuses.count(s) for s in set(statuses)})
    assert set(statuses) == {200, 429} and statuses.count(200) >= 16
    served = [r.json() for r in responses if r.status_code == 200]
    assert all(body["usage"]["completion_tokens"] > 0 for body in served)
    assert all(body["choices"][0]["finish_reason"] in ("stop", "length") for body in served)
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "queue_full"
    assert refused.headers["Retry-After"] == "1"


def test_client_disconnect_frees_the_slot_on_the_replica(server: RayServer) -> None:
    """A stream dropped after its first token is cancelled on the replica that ran it."""
    cancelled_before = sum(finished(server, "cancelled").values())
    body = {
        "model": "smollm2-135m-instruct",
        "messages": MESSAGES,
        "max_tokens": 400,
        "stream": True,
        "temperature": 0,
    }
    with httpx.Client(timeout=60) as client:
        url = f"{server.v1}/chat/completions"
        with client.stream("POST", url, json=body, headers=server.headers()) as response:
            assert response.status_code == 200
            for event in sse_events(response):
                if isinstance(event, dict) and event["choices"][0]["delta"].get("content"):
                    break  # one token arrived: leave
    waited = wait_until(
        lambda: (
            sum(finished(server, "cancelled").values()) > cancelled_before
            and sum(per_replica(server, "myllama_replica_running").values()) == 0
        ),
        60,
        "the cancelled request freed on its replica",
    )
    print(f"slot freed {waited:.1f} s after the client left")


def test_predictors_answer_through_ray(server: RayServer) -> None:
    """The predictors deployment scores; validation in the app keeps its 400 naming the field."""
    listed = httpx.get(f"{server.v1}/predictors", headers=server.headers(), timeout=30)
    assert listed.status_code == 200
    assert [card["name"] for card in listed.json()["data"]] == ["iris"]
    record = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    scored = httpx.post(
        f"{server.v1}/predict/iris",
        json={"inputs": [record, {**record, "petal_length": 5.5, "petal_width": 2.1}]},
        headers=server.headers(),
        timeout=30,
    )
    assert scored.status_code == 200, scored.text
    labels = [p["label"] for p in scored.json()["predictions"]]
    assert labels[0] == "setosa" and labels[1] == "virginica"
    bad = httpx.post(
        f"{server.v1}/predict/iris",
        json={"inputs": [{**record, "sepal_length": "long"}]},
        headers=server.headers(),
        timeout=30,
    )
    assert bad.status_code == 400, bad.text
    assert "sepal_length" in (bad.json()["error"]["param"] or "")
    missing = httpx.post(
        f"{server.v1}/predict/churn", json={"inputs": [{}]}, headers=server.headers(), timeout=30
    )
    assert missing.status_code == 404


def test_metrics_are_labelled_per_replica(server: RayServer) -> None:
    """/metrics keeps the per-model families and adds one series per replica."""
    info = replicas(server)
    assert len(info) == 2
    assert len({labels["pid"] for labels in info.values()}) == 2
    assert set(per_replica(server, "myllama_replica_kv_cells_total")) == set(info)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'myllama_requests_running{model="smollm2-135m-instruct"}' in text
    ready = httpx.get(f"{server.url}/health/ready", timeout=10).json()
    ray_part = ready["models"]["smollm2-135m-instruct"]["ray"]
    assert {r["replica"] for r in ray_part["replicas"]} == set(info)


def _stream_until_end(server: RayServer, outcome: list[str], first: threading.Event) -> None:
    """One long stream: records 'done', 'error' (an error event, then [DONE]) or 'broken'."""
    body = {
        "model": "smollm2-135m-instruct",
        "prompt": COUNTING,
        "max_tokens": 400,
        "stream": True,
        "temperature": 0,
    }
    events: list[Any] = []
    try:
        with httpx.stream(
            "POST",
            f"{server.v1}/completions",
            json=body,
            headers=server.headers(),
            timeout=120,
        ) as response:
            for event in sse_events(response):
                events.append(event)
                if isinstance(event, dict) and "choices" in event:
                    first.set()
    except httpx.HTTPError:
        outcome.append("broken")
        return
    errors = [e for e in events if isinstance(e, dict) and "error" in e]
    if events and events[-1] == "[DONE]" and not errors:
        outcome.append("done")
    elif errors and events[-1] == "[DONE]" and set(errors[0]["error"]) >= {"message", "code"}:
        outcome.append("error")
    else:
        outcome.append("broken")


def test_killing_a_replica_mid_load(server: RayServer) -> None:
    """SIGKILL one replica under 8 streams: its streams end with an error event, the others
    complete, the service answers again and Ray replaces the replica (times logged)."""
    outcomes: list[str] = []
    started = [threading.Event() for _ in range(8)]
    threads = [
        threading.Thread(target=_stream_until_end, args=(server, outcomes, s)) for s in started
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(s.is_set() for s in started), 120, "every stream started")
    # Ray gives a replica at most --parallel (4) requests: 4 streams run on each replica.
    wait_until(
        lambda: any(per_replica(server, "myllama_replica_running").values()),
        60,
        "a replica decoding",
    )
    running = per_replica(server, "myllama_replica_running")
    victim = max(running, key=lambda r: running[r])
    pid = int(replicas(server)[victim]["pid"])
    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def answers() -> bool:
        response = httpx.post(
            f"{server.v1}/completions",
            json={"model": "smollm2-135m-instruct", "prompt": "Hello", "max_tokens": 2},
            headers=server.headers(),
            timeout=120,
        )
        return response.status_code == 200

    wait_until(answers, 120, "answering after the kill")  # a free slot: new or finished
    answered = time.monotonic() - killed_at
    for thread in threads:
        thread.join(timeout=180)
    print("outcomes:", sorted(outcomes))
    assert "broken" not in outcomes
    assert outcomes.count("done") >= 1 and outcomes.count("error") >= 1
    wait_until(
        lambda: len(replicas(server)) == 2 and victim not in replicas(server),
        120,
        "a replacement replica",
    )
    replaced = time.monotonic() - killed_at
    print(f"after the kill: answering at {answered:.1f} s, replica replaced at {replaced:.1f} s")

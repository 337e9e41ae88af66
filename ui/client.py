"""The UI's client of the server: the `openai` SDK for chat, httpx for everything else."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from ui.errors import from_httpx, from_openai
from ui.settings import UISettings


@dataclass(frozen=True)
class ModelCard:
    """A model the server offers, with its context size and the engine's facts (`meta`)."""

    id: str
    n_ctx: int
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Prediction:
    """One predictor answer: the label and every class's probability."""

    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True)
class AnswerStats:
    """Figures of one streamed answer, measured by the client (DESIGN.md definitions)."""

    ttft: float  # request sent → first non-empty token, seconds
    e2e: float  # request sent → last token, seconds
    tokens: int  # completion tokens (from usage, else streamed pieces)
    exact: bool  # whether `tokens` came from the server's usage report

    @property
    def tokens_per_second(self) -> float | None:
        """Decode speed: (tokens − 1) / (E2E − TTFT), i.e. 1 / TPOT."""
        if self.tokens < 2 or self.e2e <= self.ttft:
            return None
        return (self.tokens - 1) / (self.e2e - self.ttft)

    def figures(self) -> dict[str, float]:
        """The figures by name, as a chat trace keeps them."""
        speed = self.tokens_per_second
        rate = {"tokens_per_second": speed} if speed is not None else {}
        return {"ttft_s": self.ttft, "e2e_s": self.e2e, "completion_tokens": self.tokens, **rate}

    def line(self) -> str:
        """The small line shown under an answer."""
        speed = self.tokens_per_second
        rate = f"{speed:.1f} tok/s" if speed is not None else "– tok/s"
        count = f"{self.tokens} tokens" if self.exact else f"≈{self.tokens} tokens"
        return f"TTFT {self.ttft:.2f} s · {rate} · {count}"


class ServerClient:
    """Talks to one My LLAMA server; every failure becomes a UserFacingError."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: UISettings) -> ServerClient:
        """A client configured from the UI settings."""
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(settings.server_url, key, settings.timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def _request(self, method: str, path: str, json: Any = None) -> httpx.Response:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as http:
                response = await http.request(method, path, json=json, headers=self._headers())
                response.raise_for_status()
                return response
        except httpx.HTTPError as exc:
            raise from_httpx(exc, self.base_url) from exc

    async def models(self) -> list[ModelCard]:
        """Models from /v1/models, with n_ctx from each card's meta."""
        data = (await self._request("GET", "/v1/models")).json()["data"]
        return [
            ModelCard(m["id"], int(m.get("meta", {}).get("n_ctx", 2048)), dict(m.get("meta", {})))
            for m in data
        ]

    async def predictors(self) -> list[dict[str, Any]]:
        """Predictor descriptions from /v1/predictors (name, version, input_schema, classes)."""
        return list((await self._request("GET", "/v1/predictors")).json()["data"])

    async def predict(self, name: str, record: dict[str, Any]) -> Prediction:
        """One prediction from /v1/predict/{name}."""
        return (await self.predict_many(name, [record]))[0]

    async def predict_many(self, name: str, records: list[dict[str, Any]]) -> list[Prediction]:
        """Predictions for many records in one POST /v1/predict/{name} (all or a 422)."""
        body = (await self._request("POST", f"/v1/predict/{name}", {"inputs": records})).json()
        return [
            Prediction(str(p["label"]), {str(k): float(v) for k, v in p["probabilities"].items()})
            for p in body["predictions"]
        ]

    async def running_requests(self) -> dict[str, float]:
        """The `myllama_requests_running` gauge from /metrics, by model."""
        text = (await self._request("GET", "/metrics")).text
        return {
            sample.labels.get("model", ""): sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "myllama_requests_running"
            for sample in family.samples
        }

    async def chat(
        self,
        model: str,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
    ) -> AsyncGenerator[str | AnswerStats, None]:
        """Stream an answer: text pieces, then one AnswerStats. Closing it closes the request."""
        sdk = openai.AsyncOpenAI(
            base_url=f"{self.base_url}/v1",
            api_key=self.api_key or "not-needed",
            max_retries=0,
            timeout=self.timeout,
        )
        started = time.perf_counter()
        ttft: float | None = None
        pieces = 0
        usage: int | None = None
        try:
            async with sdk:
                stream = await sdk.chat.completions.create(
                    model=model,
                    messages=cast(list[ChatCompletionMessageParam], messages),
                    stream=True,
                    stream_options={"include_usage": True},
                    temperature=temperature,
                    top_p=top_p,
                    max_tokens=max_tokens,
                )
                async with stream:
                    async for chunk in stream:
                        if chunk.usage is not None:
                            usage = chunk.usage.completion_tokens
                        for choice in chunk.choices:
                            text = choice.delta.content
                            if text:
                                if ttft is None:
                                    ttft = time.perf_counter() - started
                                pieces += 1
                                yield text
        except openai.APIError as exc:
            raise from_openai(exc, self.base_url) from exc
        e2e = time.perf_counter() - started
        yield AnswerStats(
            ttft=e2e if ttft is None else ttft,
            e2e=e2e,
            tokens=usage if usage is not None else pieces,
            exact=usage is not None,
        )

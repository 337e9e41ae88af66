"""POST /v1/embeddings (OpenAI shape), served by the lazily loaded sentence embedder."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.embedder import Embedder, EmbedderUnavailable
from models.errors import ModelNotFound
from server.errors import APIError

router = APIRouter()

MAX_INPUTS = 2048


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings: text input only (token arrays are not accepted)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _text_only(cls, value: object) -> object:
        items = value if isinstance(value, list) else [value]
        if any(not isinstance(item, str) for item in items):
            raise ValueError("only text is accepted: a string or a list of strings (no token ids)")
        return value

    @field_validator("input")
    @classmethod
    def _non_empty(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("give at least one string")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} strings per request")
        if any(not t for t in texts):
            raise ValueError("strings must not be empty")
        return value

    def texts(self) -> list[str]:
        """The inputs as a list."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


def _encode(vector: Any, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, request: Request) -> dict[str, Any]:
    """Embed one string or a list of strings."""
    embedder: Embedder = request.app.state.embedder
    if not embedder.accepts(body.model):
        raise ModelNotFound(
            f"Embedding model '{body.model}' not found; this server embeds with "
            f"'{embedder.model_id}'."
        )
    if body.dimensions is not None and body.dimensions != embedder.dimension:
        raise APIError(
            400,
            f"{embedder.model_id} produces {embedder.dimension} dimensions; "
            f"'dimensions' cannot be {body.dimensions}.",
            param="dimensions",
            code="invalid_value",
        )
    texts = body.texts()
    try:
        vectors = await asyncio.to_thread(embedder.embed, texts)
        tokens = await asyncio.to_thread(embedder.count_tokens, texts)
    except EmbedderUnavailable as exc:
        raise APIError(501, str(exc), type="server_error", code=exc.code) from exc
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": embedder.model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }

"""POST /v1/embeddings (OpenAI shape), served by the lazily loaded sentence embedder."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter

from models.errors import ModelNotFound
from server.deps import EmbedderDep
from server.errors import APIError
from server.protocol.embeddings import Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage

router = APIRouter()


def _encode(vector: Any, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, embedder: EmbedderDep) -> EmbeddingList:
    """Embed one string or a list of strings."""
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
    vectors = await asyncio.to_thread(embedder.embed, texts)
    tokens = await asyncio.to_thread(embedder.count_tokens, texts)
    return EmbeddingList(
        data=[
            Embedding(index=i, embedding=_encode(v, body.encoding_format))
            for i, v in enumerate(vectors)
        ],
        model=embedder.model_id,
        usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
    )

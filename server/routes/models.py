"""GET /v1/models and /v1/models/{id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from models.engine import Engine
from server.deps import PoolDep

router = APIRouter()


def _model_card(name: str, engine: Engine, created: int) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "myllama",
        "meta": engine.info(),
    }


@router.get("/models")
async def list_models(pool: PoolDep, request: Request) -> dict[str, Any]:
    """Every servable model id (aliases included)."""
    created = request.app.state.started_at
    return {
        "object": "list",
        "data": [_model_card(name, engine, created) for name, engine in pool.engines.items()],
    }


@router.get("/models/{model_id}")
async def get_model(model_id: str, pool: PoolDep, request: Request) -> dict[str, Any]:
    """One model, or 404 model_not_found."""
    return _model_card(model_id, pool.get(model_id), request.app.state.started_at)

"""GET /v1/models and /v1/models/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Request

from models.engine import Engine
from server.deps import PoolDep
from server.protocol.openai import ModelCard, ModelList

router = APIRouter()


def _model_card(name: str, engine: Engine, created: int) -> ModelCard:
    return ModelCard(id=name, created=created, max_model_len=engine.n_ctx, meta=engine.info())


@router.get("/models")
async def list_models(pool: PoolDep, request: Request) -> ModelList:
    """Every servable model id (aliases included)."""
    created = request.app.state.started_at
    return ModelList(
        data=[_model_card(name, engine, created) for name, engine in pool.engines.items()]
    )


@router.get("/models/{model_id}")
async def get_model(model_id: str, pool: PoolDep, request: Request) -> ModelCard:
    """One model, or 404 model_not_found."""
    return _model_card(model_id, pool.get(model_id), request.app.state.started_at)

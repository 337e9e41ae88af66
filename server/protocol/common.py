"""Shared pieces of the wire models: strict request bases, ids, refusals by name."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictRequest(BaseModel):
    """A request body: a field this server does not know is refused by name, never ignored."""

    model_config = ConfigDict(extra="forbid")


class WireModel(BaseModel):
    """A response body; None fields are kept (clients expect `"logprobs": null`)."""

    model_config = ConfigDict(extra="allow")


def refuse(values: dict[str, Any], refused: dict[str, str]) -> None:
    """Raise for the first field in `refused` that is set to something other than its no-op."""
    for name, reason in refused.items():
        if values.get(name) not in (None, False, [], {}):
            raise ValueError(f"{name} is not supported by this server: {reason}")


def new_id(prefix: str) -> str:
    """An OpenAI-style object id."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix time in seconds."""
    return int(time.time())


class ErrorDetail(WireModel):
    """What went wrong."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(WireModel):
    """The one error envelope, for every status."""

    error: ErrorDetail

"""Log-probabilities of generated tokens from the raw logits (before any sampler touches them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.engine.base import TokenLogprob
from models.errors import InvalidRequest

MAX_TOP_LOGPROBS = 20


def check_top(k: int | None) -> None:
    """Refuse a top-logprobs count outside 0..20."""
    if k is not None and not 0 <= k <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(
            f"logprobs must be between 0 and {MAX_TOP_LOGPROBS}, not {k}", "logprobs"
        )


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log(softmax(logits)) in float64, stable for large logits."""
    x = logits.astype(np.float64)
    x -= x.max()
    x -= np.log(np.exp(x).sum())
    return x


def token_logprob(
    logits: np.ndarray, token: int, k: int, piece: Callable[[int], bytes]
) -> TokenLogprob:
    """The chosen token's logprob and the k likeliest tokens' (likeliest first)."""
    logp = log_softmax(logits)
    top: tuple[tuple[str, bytes, float], ...] = ()
    if k > 0:
        ids = np.argpartition(logp, -k)[-k:]
        ids = ids[np.argsort(-logp[ids], kind="stable")]
        top = tuple(_entry(int(i), float(logp[i]), piece) for i in ids)
    data = piece(token)
    return TokenLogprob(data.decode(errors="replace"), data, float(logp[token]), top)


def _entry(token: int, logprob: float, piece: Callable[[int], bytes]) -> tuple[str, bytes, float]:
    data = piece(token)
    return data.decode(errors="replace"), data, logprob

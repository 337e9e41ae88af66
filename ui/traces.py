"""Chat answers kept in MLflow: one trace per exchange, and a like/dislike as its assessment."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

ASSESSMENT = "user_feedback"  # the assessment's name in the MLflow Traces view
CHAT = "ui-chat"  # kind of the trace of every answer (--trace-chats)
RATED = "ui-chat-feedback"  # kind of the trace written when an answer not yet traced is rated
_lock = threading.Lock()  # mlflow's tracking URI is process-wide


@dataclass(frozen=True)
class Exchange:
    """One answer: the model, the messages before it, the answer, who asked, how long it took."""

    model: str
    messages: list[dict[str, str]]
    answer: str
    user: str
    session: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # what the server says of the model file
    figures: dict[str, float] = field(default_factory=dict)  # ttft_s, e2e_s, completion_tokens
    span_ns: tuple[int, int] | None = None  # request sent → last token, epoch nanoseconds


def _experiment_id(name: str) -> str:
    """The experiment's id, created on first use."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    return found.experiment_id if found is not None else mlflow.create_experiment(name)


def trace(tracking_uri: str, experiment: str, exchange: Exchange, kind: str) -> str:
    """Write the exchange as a one-span trace (timed as the answer was, when known); its id."""
    import mlflow

    started, ended = exchange.span_ns or (None, None)
    attributes = {
        "model": exchange.model,
        **{f"model.{k}": v for k, v in exchange.meta.items()},
        **exchange.figures,
    }
    with _lock:
        mlflow.set_tracking_uri(tracking_uri)
        span = mlflow.start_span_no_context(
            name="chat answer",
            span_type="CHAT_MODEL",
            inputs={"model": exchange.model, "messages": exchange.messages},
            attributes=attributes,
            tags={"myllama.kind": kind, "model": exchange.model},
            metadata={"mlflow.trace.user": exchange.user, "mlflow.trace.session": exchange.session},
            experiment_id=_experiment_id(experiment),
            start_time_ns=started,
        )
        span.end(outputs={"answer": exchange.answer}, end_time_ns=ended)
        mlflow.flush_trace_async_logging()  # stored before anyone rates it
    return str(span.trace_id)


def rate(tracking_uri: str, trace_id: str, liked: bool, user: str) -> None:
    """Attach a human like (True) or dislike (False) to a stored trace."""
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    with _lock:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.log_feedback(
            trace_id=trace_id,
            name=ASSESSMENT,
            value=liked,
            source=AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=user),
        )

"""Like/dislike of a chat answer, kept in MLflow: a trace of the exchange and a human assessment."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

ASSESSMENT = "user_feedback"  # the assessment's name in the MLflow Traces view
KIND = "ui-chat-feedback"
_lock = threading.Lock()  # mlflow's tracking URI and experiment are process-wide


@dataclass(frozen=True)
class Rated:
    """One verdict on one answer: the model, the messages before it, the answer, who said what."""

    model: str
    messages: list[dict[str, str]]
    answer: str
    liked: bool
    user: str
    meta: dict[str, Any]


def record(tracking_uri: str, experiment: str, rated: Rated) -> str:
    """Log the exchange as a trace and the verdict as its feedback; the trace id."""
    import mlflow
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    with _lock:
        mlflow.set_tracking_uri(tracking_uri)
        found = mlflow.set_experiment(experiment)
        with mlflow.start_span(
            name="chat answer (rated in the UI)", span_type="CHAT_MODEL"
        ) as span:
            span.set_inputs({"model": rated.model, "messages": rated.messages})
            span.set_outputs({"answer": rated.answer})
            span.set_attributes(
                {"model": rated.model, **{f"model.{k}": v for k, v in rated.meta.items()}}
            )
            mlflow.update_current_trace(tags={"myllama.kind": KIND, "model": rated.model})
        trace_id = str(span.trace_id)
        mlflow.flush_trace_async_logging()  # the trace must be stored before its assessment
        mlflow.log_feedback(
            trace_id=trace_id,
            name=ASSESSMENT,
            value=rated.liked,
            source=AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=rated.user),
            rationale=None,
        )
    del found
    return trace_id

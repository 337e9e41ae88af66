"""Like/dislike kept in a real MLflow store: a trace of the exchange with a human assessment."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from ui.feedback import ASSESSMENT, KIND, Rated, record


def test_a_verdict_becomes_a_trace_with_human_feedback(tmp_path: Path) -> None:
    """Two verdicts: two traces in the experiment, each with the exchange and who rated it."""
    store = f"sqlite:///{tmp_path}/mlflow.db"
    asked = [{"role": "user", "content": "Name a colour."}]
    liked = Rated("smollm2", asked, "Blue.", True, "alice", {"file_sha256": "ab" * 32})
    disliked = Rated("smollm2", asked, "Twelve.", False, "bob", {})
    ids = [record(store, "chat-feedback", liked), record(store, "chat-feedback", disliked)]
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("chat-feedback")
    assert experiment is not None
    traces = {t.info.trace_id: t for t in client.search_traces([experiment.experiment_id])}
    assert set(traces) == set(ids)
    for trace_id, rated in zip(ids, (liked, disliked), strict=True):
        trace = client.get_trace(trace_id)
        (verdict,) = [a for a in trace.info.assessments if a.name == ASSESSMENT]
        assert verdict.value is rated.liked
        assert verdict.source.source_type == "HUMAN" and verdict.source.source_id == rated.user
        assert trace.info.tags["myllama.kind"] == KIND and trace.info.tags["model"] == "smollm2"
        (span,) = trace.data.spans
        assert span.inputs == {"model": "smollm2", "messages": asked}
        assert span.outputs == {"answer": rated.answer}
        assert span.attributes.get("model.file_sha256") == rated.meta.get("file_sha256")

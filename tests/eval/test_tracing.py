"""`myllama eval run --trace`: every request of the run is an MLflow trace in a temp store."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities import SpanType

from eval.settings import EvalRunSettings
from tests.conftest import Server
from tests.eval.cli_helpers import eval_cli


def _eval(server: Server, store: str, work: Path, *extra: str) -> str:
    """A two-prompt smoke run at concurrency 2; its run id."""
    args = ["run", "--prompts", "smoke", "--limit", "2", "--max-tokens", "8"]
    args += ["--concurrency", "2", "--server-url", server.url, "--api-key", str(server.api_key)]
    args += ["--tracking-uri", store, "--experiment", "traced", *extra]
    code, result, err = eval_cli(args, cwd=work)
    assert code == 0, err[-3000:]
    run_id: str = result["run_id"]
    return run_id


def test_eval_run_with_trace_records_each_request(server: Server, tmp_path: Path) -> None:
    """Two prompts, two traces: each a streamed chat span with the prompt in and the answer out,
    linked to the eval run (tracing is opt-in: off unless --trace or MYLLAMA_EVAL_TRACE)."""
    assert EvalRunSettings().trace is False
    store = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = _eval(server, store, tmp_path, "--trace")
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name("traced")
    assert experiment is not None
    traces = mlflow.search_traces(locations=[experiment.experiment_id], return_type="list")
    assert len(traces) == 2
    for trace in traces:
        assert trace.info.state == "OK"
        assert trace.info.request_metadata.get("mlflow.sourceRun") == run_id
        chat = [s for s in trace.data.spans if s.span_type == SpanType.CHAT_MODEL]
        assert len(chat) == 1, [s.span_type for s in trace.data.spans]
        assert chat[0].inputs["stream"] is True
        assert chat[0].inputs["messages"][-1]["role"] == "user"
        assert chat[0].outputs  # the streamed answer, assembled by the autologger

"""Latency figures follow the vLLM / GenAI-Perf definitions."""

from __future__ import annotations

import numpy as np
import pytest

from eval.latency import RequestRecord, percentiles, summarise


def _record(pid: str, token_times: list[float], e2e: float, tokens: int) -> RequestRecord:
    """A successful request with these token arrival times."""
    return RequestRecord(
        pid, "x", ttft=token_times[0], e2e=e2e, token_times=token_times, output_tokens=tokens
    )


def test_tpot_itl_and_aggregates() -> None:
    """TPOT, ITL, percentiles and tok/s follow the definitions; failures are counted apart."""
    a = _record("a", [0.5, 0.7, 1.0], e2e=1.1, tokens=3)
    b = _record("b", [0.2, 0.3], e2e=0.4, tokens=2)
    failed = RequestRecord("c", error="APIConnectionError: boom")
    single = _record("d", [0.3], e2e=0.3, tokens=1)
    assert a.tpot == pytest.approx((1.1 - 0.5) / 2)
    assert a.itl == pytest.approx([0.2, 0.3])
    assert single.tpot is None and failed.tpot is None and not failed.ok
    figures = summarise([a, b, failed, single], wall_time=2.0)
    assert figures["requests"] == 4 and figures["failed_requests"] == 1
    assert figures["output_tokens"] == 6
    assert figures["output_tok_per_s"] == pytest.approx(3.0)
    assert figures["ttft_s_p50"] == pytest.approx(np.percentile([0.5, 0.2, 0.3], 50))
    assert figures["itl_s_mean"] == pytest.approx(np.mean([0.2, 0.3, 0.1]))
    assert figures["e2e_s_p99"] == pytest.approx(np.percentile([1.1, 0.4, 0.3], 99))
    assert figures["tpot_s_mean"] == pytest.approx(np.mean([0.3, 0.2]))


def test_percentiles_of_nothing_is_nothing() -> None:
    """No values give no percentile keys; values give mean/p50/p95/p99."""
    assert percentiles([], "ttft_s") == {}
    assert set(percentiles([1.0, 2.0], "x")) == {"x_mean", "x_p50", "x_p95", "x_p99"}

"""`myllama up`: the server and the UI come up together and both stop on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import API_KEY
from tests.helpers import ROOT, free_port, wait_for


def answers(url: str) -> bool:
    """Whether anything answers HTTP at `url`."""
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_starts_both_and_stops_both(tmp_path: Path, stop_with: signal.Signals) -> None:
    """`myllama up` serves both, passes the key on, and stops both cleanly on the signal."""
    config = tmp_path / "server.yaml"
    config.write_text(
        f"tracking_uri: sqlite:///{tmp_path}/mlflow.db\n"
        f"prediction_log: {tmp_path}/predictions.db\n"
        "load_predictors: false\n"
    )
    server, ui = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    args = ["up", "--config", str(config), "--server-url", server, "--api-key", API_KEY]
    args += ["--port", ui.rsplit(":", 1)[1]]
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "myllama", *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(f"{ui}/", up)
        wait_for(f"{server}/health", up)
        models = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"})
        assert models.status_code == 200  # the key reached the server
        up.send_signal(stop_with)
        assert up.wait(timeout=60) == 0
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    assert not answers(f"{server}/health")
    assert not answers(f"{ui}/")
    text = (tmp_path / "up.log").read_text()
    assert f"received {stop_with.name}, shutting down" in text
    assert "Traceback" not in text

"""The `myllama` command: --version, help with defaults and env names, short flags, one-line
errors that never echo values, `up` passing server flags on, `mlflow` on the project's store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import myllama
from cli_settings import env_name, load_settings
from server.settings import ServerSettings
from tests.conftest import API_KEY
from tests.helpers import ROOT, free_port, wait_for
from ui.settings import UISettings
from ui.up import server_command


def run_myllama(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m myllama ARGS` to the end; its output."""
    return subprocess.run(
        [sys.executable, "-m", "myllama", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (exit status 2, no traceback)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_version() -> None:
    """`myllama --version` names the package version, llama-cpp-python's and Python's."""
    done = run_myllama("--version")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"myllama \d+\.\d+\.\d+\S* \(llama-cpp-python \S+, Python 3\.\d+\.\d+\)\n", done.stdout
    ), done.stdout


def test_serve_help_shows_default_and_env_name_of_every_flag() -> None:
    """Each settings flag's help ends with its default and its MYLLAMA_* variable."""
    done = run_myllama("serve", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    for name in ServerSettings.model_fields:
        if name == "models":
            continue  # structured list: config file only
        assert f"--{name.replace('_', '-')}" in text, name
        assert f"env: {env_name(ServerSettings, name)})" in text, name
    assert "(default: unset; env: MYLLAMA_CTX_SIZE)" in text
    assert "(default: unset; env: MYLLAMA_N_CTX)" in text
    assert "(default: unset; env: MYLLAMA_API_KEY)" in text
    assert "as llama-server's -c" in text
    for short, long in (("-m", "MODEL"), ("-c", "CTX_SIZE"), ("-np", "PARALLEL"),
                        ("-t", "N_THREADS"), ("-ngl", "N_GPU_LAYERS")):  # fmt: skip
        assert f"{short} {long}, --" in text, short


def test_short_flags_set_the_same_settings_as_long_ones() -> None:
    """-m -c -np -t -ngl -b -ctk -ctv -fa reach the same ServerSettings fields as long names."""
    short = myllama.parse(
        ["serve", "-m", "x.gguf", "-c", "4096", "-np", "4", "-t", "3", "-ngl", "-1", "-b", "256",
         "-ctk", "q8_0", "-ctv", "q4_0", "-fa", "off"]
    )  # fmt: skip
    long = myllama.parse(
        ["serve", "--model", "x.gguf", "--ctx-size", "4096", "--parallel", "4", "--n-threads", "3",
         "--n-gpu-layers", "-1", "--n-batch", "256", "--cache-type-k", "q8_0",
         "--cache-type-v", "q4_0", "--flash-attn", "off"]
    )  # fmt: skip
    settings = load_settings(ServerSettings, short)
    assert settings == load_settings(ServerSettings, long)
    assert (settings.model, settings.ctx_size, settings.parallel) == (["x.gguf"], 4096, 4)
    assert (settings.n_threads, settings.n_gpu_layers, settings.n_batch) == (3, -1, 256)
    assert (settings.cache_type_k, settings.cache_type_v, settings.flash_attn) == (
        "q8_0",
        "q4_0",
        "off",
    )


def test_a_bad_flag_is_one_line() -> None:
    """argparse's refusal is one line naming the flag, not a usage block."""
    line = one_line_error(run_myllama("serve", "-c", "lots"))
    assert "-c/--ctx-size" in line and "'lots'" in line


def test_invalid_settings_name_the_field_and_never_echo_values() -> None:
    """A pydantic refusal names field and reason; the API key given never appears."""
    secret = "sk-very-secret-value-42"
    done = run_myllama(
        "serve", "--api-key", secret, "--n-ctx", "1", "--parallel", "999", "-ctk", "q9"
    )
    line = one_line_error(done)
    assert "n_ctx: Input should be greater than or equal to 64" in line
    assert "cache_type_k: Input should be 'f32', 'f16'" in line
    assert "parallel:" in line
    assert secret not in done.stderr + done.stdout
    assert "input_value" not in line
    env_done = run_myllama("serve", env={"MYLLAMA_PORT": "eighty", "MYLLAMA_API_KEY": secret})
    assert "port: Input should be a valid integer" in one_line_error(env_done)
    assert secret not in env_done.stderr


def test_a_bad_path_is_one_line(tmp_path: Path) -> None:
    """A missing model file or an unreadable config file: one line, exit 2."""
    missing = tmp_path / "nope.gguf"
    assert str(missing) in one_line_error(run_myllama("serve", "-m", str(missing)))
    config = tmp_path / "bad.yaml"
    config.write_text("n_ctx: [unclosed\n")
    assert "bad.yaml" in one_line_error(run_myllama("serve", "--config", str(config)))


def test_up_passes_the_server_flags_on() -> None:
    """The server flags given to `myllama up` become the same settings in `myllama serve`."""
    args = myllama.parse(
        ["up", "--server-url", "http://127.0.0.1:8123", "-m", "a.gguf", "-c", "1024",
         "-np", "2", "--no-prefix-cache", "--max-queue", "3", "--port", "7999"]
    )  # fmt: skip
    command = server_command(load_settings(UISettings, args), None, args.forward_argv)
    assert command[:4] == [sys.executable, "-m", "myllama", "serve"]
    served = load_settings(ServerSettings, myllama.parse(command[3:]))
    assert served.port == 8123  # from --server-url; --port is the UI's
    assert served.model == ["a.gguf"]
    assert (served.ctx_size, served.parallel, served.max_queue) == (1024, 2, 3)
    assert served.prefix_cache is False


def test_up_serves_with_the_flags_it_was_given(tmp_path: Path) -> None:
    """A real `myllama up -c 512 -np 2`: the server it starts reports that cache and slots."""
    server, ui = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    args = ["up", "--server-url", server, "--port", ui.rsplit(":", 1)[1], "-c", "512", "-np", "2"]
    args += ["--no-load-predictors", "--prediction-log", str(tmp_path / "p.db")]
    args += ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "myllama", *args],
        cwd=ROOT,
        env={**os.environ, "MYLLAMA_API_KEY": API_KEY},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"{server}/health/ready", up)
        model = next(iter(httpx.get(f"{server}/health/ready").json()["models"].values()))
        assert (model["ctx_size"], model["n_ctx"], model["parallel"]) == (512, 256, 2)
        wait_for(f"{ui}/", up)
        # SIGINT stops both even before the UI installs its handlers (KeyboardInterrupt: 130);
        # tests/ui/test_up.py covers the signal handling itself.
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) in (0, 130)
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server}/health/live", timeout=5)  # the server went with it


def test_mlflow_opens_the_ui_on_the_given_store(tmp_path: Path) -> None:
    """`myllama mlflow` serves the MLflow UI on loopback for the store the server and eval use."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.MlflowClient(uri).create_experiment("probe-for-the-ui", str(tmp_path / "artifacts"))
    port = free_port()
    log = (tmp_path / "mlflow.log").open("wb")
    ui = subprocess.Popen(
        [sys.executable, "-m", "myllama", "mlflow", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "MYLLAMA_TRACKING_URI": uri},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # mlflow's server workers go with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", ui)
        found = httpx.post(
            f"{url}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 10}, timeout=10
        )
        assert found.status_code == 200, found.text
        names = {e["name"] for e in found.json()["experiments"]}
        assert "probe-for-the-ui" in names
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        log.close()


def test_mlflow_help_names_defaults_and_env() -> None:
    """`myllama mlflow --help` lists its flags with defaults and variables."""
    done = run_myllama("mlflow", "--help")
    text = " ".join(done.stdout.split())
    assert all(flag in text for flag in ("--host", "--port", "--tracking-uri", "--workers"))
    assert "(default: sqlite:///mlflow.db; env: MYLLAMA_TRACKING_URI)" in text
    assert "(default: 5000; env: MYLLAMA_MLFLOW_PORT)" in text

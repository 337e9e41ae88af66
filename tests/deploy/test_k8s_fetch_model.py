"""The Deployment's fetch-model init container script, run for real against a local HTTP server."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.k8s import by_kind

PAYLOAD = b"GGUF" + bytes(range(256)) * 64


def _script(models: Path) -> str:
    """The init container's Python, with its /models mount pointed at a temp folder."""
    pod = by_kind()["Deployment"]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["python", "-c"]
    mount = next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == "models")
    script: str = init["command"][2]
    assert f'"{mount}"' in script
    return script.replace(f'"{mount}"', repr(str(models)))


@pytest.fixture
def http_files(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server for tmp_path/www: its URL and the paths it was asked for."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "model.gguf").write_bytes(PAYLOAD)
    asked: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def _run(script: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODEL_URL": url, "MODEL_FILE": "model.gguf", "HOSTNAME": "pod-a"}
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )


def test_downloads_once_then_reuses_the_file(
    tmp_path: Path, http_files: tuple[str, list[str]]
) -> None:
    """The first pod downloads MODEL_URL whole; the next finds it and downloads nothing."""
    url, asked = http_files
    models = tmp_path / "models"
    models.mkdir()
    script = _script(models)
    for _ in range(2):
        done = _run(script, f"{url}/model.gguf")
        assert done.returncode == 0, done.stderr
        assert (models / "model.gguf").read_bytes() == PAYLOAD
    assert asked == ["/model.gguf"]
    assert [p.name for p in models.iterdir()] == ["model.gguf"]  # no partial file left


def test_no_url_means_the_default_model(tmp_path: Path) -> None:
    """With MODEL_URL empty the container does nothing and says so."""
    models = tmp_path / "models"
    models.mkdir()
    done = _run(_script(models), "")
    assert done.returncode == 0, done.stderr
    assert "the image's default" in done.stdout and not list(models.iterdir())


def test_a_failed_download_fails_the_pod(tmp_path: Path, http_files: tuple[str, list[str]]) -> None:
    """A missing file fails the init container (the pod does not start on no model)."""
    url, _ = http_files
    models = tmp_path / "models"
    models.mkdir()
    done = _run(_script(models), f"{url}/missing.gguf")
    assert done.returncode != 0 and "404" in done.stderr
    assert not (models / "model.gguf").exists()

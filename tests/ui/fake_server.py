"""A tiny HTTP server that answers with canned failures the real server only gives under load."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUSY = {
    "error": {
        "message": "Too many requests waiting; retry in 1 s.",
        "type": "rate_limit_error",
        "param": None,
        "code": "queue_full",
    }
}


class _Handler(BaseHTTPRequestHandler):
    """429 for every route except /broken-stream/v1/chat/completions, which fails mid-stream."""

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Busy."""
        self._json(429, BUSY)

    def do_POST(self) -> None:
        """Busy, or a stream that breaks after one token."""
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if not self.path.startswith("/broken-stream/"):
            self._json(429, BUSY)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        }
        failure = {"error": {**BUSY["error"], "message": "generation failed: out of memory"}}
        for event in (chunk, failure):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fake_server() -> Iterator[str]:
    """The base URL of a fake server running in a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()

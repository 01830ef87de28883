"""A webhook receiver on loopback: records every POST (headers, body) and answers from a script of status codes."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support.wait import wait_until


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """`answers`: status codes for the first requests, in order; then `default`. Use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", answers: list[int] | None = None, default: int = 200):
        self.answers, self.default = list(answers or []), default
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    code = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body, code))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def set_default(self, code: int) -> None:
        with self._lock:
            self.default = code

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """At least `count` requests received (AssertionError after `timeout` seconds)."""
        return wait_until(lambda: self.requests() if len(self.requests()) >= count else None, timeout=timeout,
                          what=f"{count} webhook requests at {self.url}")  # fmt: skip

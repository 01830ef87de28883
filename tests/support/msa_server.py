"""A loopback MSA server speaking ColabFold's API as boltz 2.2.1's client uses it (boltz/data/msa/mmseqs2.py).

- POST /ticket/msa and /ticket/pair (form fields q: `>101\\nSEQ\\n>102\\nSEQ\\n...`, mode) -> {"id", "status"}; every
  submission is answered COMPLETE at once, so boltz's client never sleeps on a RUNNING job;
- GET /ticket/<id> -> {"id", "status": "COMPLETE"};
- GET /result/download/<id> -> a tar.gz with uniref.a3m and bfd.mgnify30.metaeuk30.smag30.a3m (unpaired) or
  pair.a3m (paired), one block per query, blocks separated by a NUL byte and headed `>101`, `>102`, ... as
  run_mmseqs2 parses them; the hits are point mutants of the query, so boltz keeps the alignment.
It counts submissions per sequence, and refuses the first `refuse_first` submissions (or all, refuse_first=None
with refuse=True) with HTTP 429 (`refusal="http"`, with Retry-After when `retry_after` is set) or with an HTTP 200
answer of status RATELIMIT (`refusal="status"`), as the public server does when an address submits too much.
"""

from __future__ import annotations

import io
import json
import tarfile
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs

UNPAIRED_FILES = ("uniref.a3m", "bfd.mgnify30.metaeuk30.smag30.a3m")
PAIRED_FILE = "pair.a3m"
HITS = 3  # alignment rows besides the query, per file


@dataclass
class MsaServer:
    """Behaviour and counts, shared with the handler threads (read the counts under `lock`)."""

    refuse_first: int | None = 0  # None: refuse every submission
    refusal: Literal["http", "status"] = "http"
    retry_after: str | None = None  # the Retry-After header of a 429
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    submissions: Counter = field(default_factory=Counter)  # sequence -> submissions naming it (refused included)
    submission_log: list[tuple[str, str, bool]] = field(default_factory=list)  # (endpoint, mode, accepted)
    tickets: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (endpoint, sequences)
    requests: Counter = field(default_factory=Counter)  # "POST /ticket/msa", "GET /ticket", "GET /result/download"

    @property
    def total_submissions(self) -> int:
        with self.lock:
            return len(self.submission_log)

    @property
    def refused(self) -> int:
        with self.lock:
            return sum(1 for *_, accepted in self.submission_log if not accepted)

    def submit(self, endpoint: str, query: str, mode: str) -> tuple[int, dict, dict[str, str]]:
        sequences = [line for line in query.splitlines() if line and not line.startswith(">")]
        with self.lock:
            self.submissions.update(sequences)
            refused_so_far = sum(1 for *_, accepted in self.submission_log if not accepted)
            refuse = self.refuse_first is None or refused_so_far < self.refuse_first
            self.submission_log.append((endpoint, mode, not refuse))
            if refuse:
                if self.refusal == "status":
                    return 200, {"status": "RATELIMIT"}, {}
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return 429, {"detail": "rate limited"}, headers
            ticket = uuid.uuid4().hex
            self.tickets[ticket] = (endpoint, sequences)
        return 200, {"id": ticket, "status": "COMPLETE"}, {}

    def archive(self, ticket: str) -> bytes | None:
        with self.lock:
            found = self.tickets.get(ticket)
        if found is None:
            return None
        endpoint, sequences = found
        names = (PAIRED_FILE,) if endpoint == "pair" else UNPAIRED_FILES
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for k, name in enumerate(names):
                data = a3m_blocks(sequences, salt=k).encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def a3m_blocks(sequences: list[str], salt: int = 0) -> str:
    """The queries' blocks as ColabFold writes them: `>101` + query + hits, blocks joined by a NUL byte."""
    blocks = []
    for n, sequence in enumerate(sequences, start=101):
        rows = [f">{n}\n{sequence}\n"]
        for hit in range(HITS):
            position = (hit * 7 + salt * 3 + n) % len(sequence)
            mutant = sequence[:position] + ("A" if sequence[position] != "A" else "G") + sequence[position + 1 :]
            rows.append(f">UniRef100_{salt}{hit}{n}\t{hit}\n{mutant}\n")
        blocks.append("".join(rows))
    return "\x00".join(blocks)


def _handler(state: MsaServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet: the counts are the record
            pass

        def do_POST(self) -> None:  # noqa: N802
            endpoint = self.path.strip("/").removeprefix("ticket/")
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            with state.lock:
                state.requests[f"POST {self.path}"] += 1
            if endpoint not in ("msa", "pair"):
                return self._json(404, {"error": "unknown endpoint"})
            status, body, headers = state.submit(endpoint, form.get("q", [""])[0], form.get("mode", [""])[0])
            self._json(status, body, headers)

        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.strip("/").split("/")
            with state.lock:
                state.requests[f"GET /{'/'.join(parts[:-1])}"] += 1
            if parts[:2] == ["result", "download"] and len(parts) == 3:
                data = state.archive(parts[2])
                if data is None:
                    return self._json(404, {"error": "unknown ticket"})
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if parts[0] == "ticket" and len(parts) == 2:
                known = parts[1] in state.tickets
                return self._json(200, {"id": parts[1], "status": "COMPLETE" if known else "ERROR"})
            self._json(404, {"error": "not found"})

        def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class serving:  # noqa: N801 (used as a context manager, like contextlib's)
    """`with serving(MsaServer(...)) as server:` runs it on 127.0.0.1 (a free port) until the block ends."""

    def __init__(self, state: MsaServer):
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MsaServer:
        self.thread.start()
        self.state.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self.state

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

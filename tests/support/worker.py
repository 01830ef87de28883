"""Helpers for the worker's integration tests: a Hugging Face look-alike on loopback, model files, a ready model
cache."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import tarfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HF_REPO = "boltz-community/boltz-2"
BOLTZGEN_REPO = "boltzgen/boltzgen-1"
BOLTZGEN_DATASET = "datasets/boltzgen/inference-data"  # a dataset repo: its URLs start with /datasets/
RESOLVE = re.compile(r"^(?P<head>/.+)/resolve/main/(?P<file>[^/]+)$")
CDN = re.compile(r"^/cdn/(?P<key>.+)$")


def make_mols_tar(names=("ALA", "GLY", "SAH")) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo("mols")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        for name in names:
            data = f"pickled {name}".encode() * 50
            info = tarfile.TarInfo(f"mols/{name}.pkl")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_model_files() -> dict[str, bytes]:
    """Small stand-ins for the boltz2 bundle, deterministic."""
    rng = random.Random(1234)
    return {
        "boltz2_conf.ckpt": rng.randbytes(300_000),
        "boltz2_aff.ckpt": rng.randbytes(200_000),
        "mols.tar": make_mols_tar(),
    }


def make_mols_zip(names=("ALA", "GLY", "SAH")) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(f"{name}.pkl", f"pickled {name}".encode() * 50)
    return buffer.getvalue()


def make_boltzgen_files() -> dict[str, dict[str, bytes]]:
    """Small stand-ins for the boltzgen bundle by repository, deterministic. boltz2_aff.ckpt differs from the boltz2
    bundle's on purpose: a file fetched from the wrong repository shows."""
    rng = random.Random(5678)
    checkpoints = {
        name: rng.randbytes(size)
        for name, size in (
            ("boltzgen1_diverse.ckpt", 150_000),
            ("boltzgen1_adherence.ckpt", 140_000),
            ("boltzgen1_ifold.ckpt", 90_000),
            ("boltz2_conf_final.ckpt", 120_000),
            ("boltz2_aff.ckpt", 110_000),
        )
    }
    return {BOLTZGEN_REPO: checkpoints, BOLTZGEN_DATASET: {"mols.zip": make_mols_zip()}}


def bundle_files(by_repo: dict[str, dict[str, bytes]]) -> dict[str, bytes]:
    """A bundle's files by name, from files by repository (as they lie in the cache's bundle directory)."""
    return {name: content for files in by_repo.values() for name, content in files.items()}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class HubRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    """Serves files the way huggingface.co does: the resolve URL answers 302 with X-Linked-Size/X-Linked-Etag
    (the sha256) and a Location on a CDN path, which serves the bytes with Range support and an md5-like ETag.

    `files` are the boltz2 repo's (CDN path /cdn/<file>); `repos` more repositories by their URL path (a dataset
    repo's starts with datasets/), served at /cdn/<repo>/<file>. cut_next_get and served_bytes are keyed by the
    path after /cdn/. A mirror may put one path segment before the repository."""

    files: dict[str, bytes]
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    port: int = 0
    cdn_host: str = "127.0.0.1"  # "localhost" makes the CDN another host, as on huggingface.co
    requests: list[HubRequest] = field(default_factory=list)
    cut_next_get: dict[str, int] = field(default_factory=dict)  # file -> bytes sent before dropping the connection
    served_bytes: dict[str, bytes] = field(default_factory=dict)  # file -> bytes served instead (corruption)
    ignore_range: bool = False
    fail_next: list[int] = field(default_factory=list)  # statuses for the next resolve requests
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gets(self, path_part: str = "") -> list[HubRequest]:
        return [r for r in self.requests if r.method == "GET" and path_part in r.path]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def resolve_key(self, head: str, file: str) -> str | None:
        """The CDN key of /[<mirror prefix>/]<repo>/resolve/main/<file>, None when no repository here has it."""
        for repo, files in [*self.repos.items(), (HF_REPO, self.files)]:
            prefix = head.removesuffix(f"/{repo}")
            # (a model repo asked for under /datasets/ is not found, as on huggingface.co)
            if prefix != head and prefix.count("/") <= 1 and prefix != "/datasets" and file in files:
                return file if repo == HF_REPO else f"{repo}/{file}"
        return None

    def content(self, key: str) -> bytes | None:
        repo, _, file = key.rpartition("/")
        return self.files.get(file) if not repo else self.repos.get(repo, {}).get(file)


class HubHandler(BaseHTTPRequestHandler):
    hub: FakeHub

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_HEAD(self):
        self._handle(send_body=False)

    def do_GET(self):
        self._handle(send_body=True)

    def _handle(self, send_body: bool) -> None:
        hub = self.hub
        with hub.lock:
            hub.requests.append(HubRequest(self.command, self.path, dict(self.headers.items())))
            failure = hub.fail_next.pop(0) if hub.fail_next and RESOLVE.match(self.path) else None
        if failure:
            self._empty(failure)
            return
        resolve, cdn = RESOLVE.match(self.path), CDN.match(self.path)
        key = hub.resolve_key(resolve.group("head"), resolve.group("file")) if resolve else None
        if key is not None:
            self._redirect(key)
        elif cdn and hub.content(cdn.group("key")) is not None:
            self._serve(cdn.group("key"), send_body)
        else:
            self._empty(404)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _redirect(self, key: str) -> None:
        content = self.hub.content(key)
        self.send_response(302)
        self.send_header("Location", f"http://{self.hub.cdn_host}:{self.hub.port}/cdn/{key}")
        self.send_header("X-Linked-Size", str(len(content)))
        self.send_header("X-Linked-Etag", f'"{sha256(content)}"')
        self.send_header("ETag", '"0123456789abcdef0123456789abcdef01234567"')  # the git blob id, not the sha256
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, key: str, send_body: bool) -> None:
        hub = self.hub
        content = hub.served_bytes.get(key, hub.content(key))
        start = _range_start(self.headers.get("Range"))
        if start is None or hub.ignore_range:
            start = 0
            self.send_response(200)
        else:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(content) - 1}/{len(content)}")
        body = content[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.md5(content).hexdigest()}"')  # noqa: S324 (a CDN's ETag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not send_body:
            return
        with hub.lock:
            cut = hub.cut_next_get.pop(key, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True  # drop the connection mid-body
            return
        self.wfile.write(body)


@contextmanager
def serving(hub: FakeHub):
    """Serve `hub` on a free loopback port until the block ends."""
    handler = type("Handler", (HubHandler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    hub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _range_start(header: str | None) -> int | None:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else None


@dataclass
class WorkerOutcome:
    exit_code: int
    summary: dict


def write_model_cache(cache_dir: Path, model_files: dict[str, bytes]) -> Path:
    """A ready boltz2 cache laid out as populate leaves it."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, content in model_files.items():
        (cache_dir / name).write_bytes(content)
    with tarfile.open(fileobj=io.BytesIO(model_files["mols.tar"])) as tar:
        tar.extractall(cache_dir, filter="data")
    return cache_dir


def write_boltzgen_cache(cache_dir: Path, boltzgen_files: dict[str, dict[str, bytes]]) -> Path:
    """A ready boltzgen cache laid out as populate leaves it (nothing extracted: boltzgen reads mols.zip)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, content in bundle_files(boltzgen_files).items():
        (cache_dir / name).write_bytes(content)
    return cache_dir


def boltzgen_models_under(models_dir: Path):
    """The design worker's default BoltzGenModels with every path moved from the pod's /models to `models_dir`."""
    from boltz_contract import MODELS_DIR, BoltzGenModels

    def moved(path: str) -> str:
        return str(models_dir / Path(path).relative_to(MODELS_DIR))

    fields = BoltzGenModels().model_dump()
    return BoltzGenModels.model_validate(
        {name: [moved(p) for p in value] if isinstance(value, list) else moved(value) for name, value in fields.items()}
    )


def invocations(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

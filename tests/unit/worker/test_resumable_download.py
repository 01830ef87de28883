"""download_verified with an in-memory source: resume, restart, verification, retries, disk space."""

from __future__ import annotations

import hashlib
from collections import namedtuple
from pathlib import Path

import pytest

from boltz_contract import ErrorClass, WorkerError
from boltz_worker.model_cache.downloads import (
    RangeStream,
    RemoteFile,
    RetryPolicy,
    TransientError,
    download_verified,
    partial_path,
)
from boltz_worker.model_cache.hf_source import sha256_from_etag
from boltz_worker.model_cache.model_catalog import BOLTZ2

CONTENT = bytes(range(256)) * 40  # 10 KiB
SHA = hashlib.sha256(CONTENT).hexdigest()
NO_RETRY_WAIT = RetryPolicy(attempts=3, backoff_seconds=0)


class MemorySource:
    """Serves CONTENT; each entry of `plan` shapes one request: cut after N bytes, ignore ranges, fail."""

    def __init__(self, content=CONTENT, sha=SHA, size=None, plan=()):
        self.content = content
        size = len(content) if size is None else size
        self.remote = RemoteFile(uri="mem://f", locator="mem://f", size=size, sha256=sha)
        self.plan = list(plan)
        self.offsets: list[int] = []

    def describe(self, bundle, file):
        return self.remote

    def open_from(self, remote, offset):
        self.offsets.append(offset)
        step = self.plan.pop(0) if self.plan else {}
        if step.get("fail"):
            raise TransientError("connection refused")
        start = 0 if step.get("ignore_range") else offset
        body = self.content[start:]
        if "cut_after" in step:
            body = body[: step["cut_after"]]
        return RangeStream(chunks=iter([body[i : i + 1000] for i in range(0, len(body), 1000)]), start=start,
                           total_size=len(self.content))  # fmt: skip


def download(source, dest: Path, retry=NO_RETRY_WAIT, sleeps=None):
    sleep = (sleeps if sleeps is not None else []).append
    return download_verified(source, BOLTZ2, "boltz2_conf.ckpt", dest, retry, sleep=sleep)


def test_a_clean_download_is_verified_and_renamed(tmp_path):
    dest = tmp_path / "boltz2_conf.ckpt"
    verified = download(MemorySource(), dest)
    assert dest.read_bytes() == CONTENT
    assert (verified.bytes, verified.sha256, verified.uri) == (len(CONTENT), SHA, "mem://f")
    assert not partial_path(dest).exists()


def test_a_cut_connection_resumes_from_the_bytes_already_written(tmp_path):
    source = MemorySource(plan=[{"cut_after": 3000}])
    dest = tmp_path / "f"
    download(source, dest)
    assert source.offsets == [0, 3000]
    assert dest.read_bytes() == CONTENT


def test_a_partial_left_by_a_killed_pod_is_resumed(tmp_path):
    dest = tmp_path / "f"
    partial_path(dest).write_bytes(CONTENT[:4321])
    source = MemorySource()
    download(source, dest)
    assert source.offsets == [4321]
    assert dest.read_bytes() == CONTENT


def test_a_stale_partial_that_spoils_the_checksum_is_downloaded_again_once(tmp_path):
    dest = tmp_path / "f"
    partial_path(dest).write_bytes(b"\xff" * 4000)  # left by a run that fetched another version of the file
    source = MemorySource()
    download(source, dest)
    assert source.offsets == [4000, 0]
    assert dest.read_bytes() == CONTENT


def test_a_source_serving_wrong_bytes_after_a_restart_is_a_mismatch(tmp_path):
    dest = tmp_path / "f"
    partial_path(dest).write_bytes(CONTENT[:4000])
    source = MemorySource(content=b"\0" * len(CONTENT), sha=SHA)
    with pytest.raises(WorkerError) as caught:
        download(source, dest)
    assert caught.value.error_class == ErrorClass.CHECKSUM_MISMATCH
    assert source.offsets == [4000, 0]  # resumed, then once from scratch, then no more
    assert not partial_path(dest).exists()


def test_a_server_ignoring_the_range_restarts_from_zero(tmp_path):
    source = MemorySource(plan=[{"cut_after": 3000}, {"ignore_range": True}])
    dest = tmp_path / "f"
    download(source, dest)
    assert source.offsets == [0, 3000]
    assert dest.read_bytes() == CONTENT  # not the first 3000 bytes twice


def test_a_complete_partial_is_verified_without_fetching(tmp_path):
    dest = tmp_path / "f"
    partial_path(dest).write_bytes(CONTENT)
    source = MemorySource()
    download(source, dest)
    assert source.offsets == []
    assert dest.read_bytes() == CONTENT


def test_a_partial_longer_than_the_file_starts_over(tmp_path):
    dest = tmp_path / "f"
    partial_path(dest).write_bytes(CONTENT + b"junk")
    source = MemorySource()
    download(source, dest)
    assert source.offsets == [0]
    assert dest.read_bytes() == CONTENT


def test_wrong_bytes_are_rejected_and_deleted(tmp_path):
    corrupted = CONTENT[:-1] + b"\x00"
    dest = tmp_path / "f"
    with pytest.raises(WorkerError) as caught:
        download(MemorySource(content=corrupted, sha=SHA), dest)
    error = caught.value
    assert error.error_class == ErrorClass.CHECKSUM_MISMATCH
    assert "boltz2/boltz2_conf.ckpt" in error.message
    assert SHA in error.message and hashlib.sha256(corrupted).hexdigest() in error.message
    assert not dest.exists() and not partial_path(dest).exists()


def test_a_size_mismatch_is_a_checksum_mismatch(tmp_path):
    dest = tmp_path / "f"
    source = MemorySource(sha=None, size=len(CONTENT) - 10)  # the source sends more than it announced
    with pytest.raises(WorkerError) as caught:
        download(source, dest)
    assert caught.value.error_class == ErrorClass.CHECKSUM_MISMATCH
    assert f"{len(CONTENT) - 10} bytes" in caught.value.message and not partial_path(dest).exists()


def test_without_a_published_sha256_the_computed_one_is_returned(tmp_path):
    verified = download(MemorySource(sha=None), tmp_path / "f")
    assert verified.sha256 == SHA


def test_transient_failures_are_retried_with_exponential_backoff(tmp_path):
    sleeps: list[float] = []
    source = MemorySource(plan=[{"fail": True}, {"fail": True}])
    policy = RetryPolicy(attempts=3, backoff_seconds=2.0)
    download(source, tmp_path / "f", retry=policy, sleeps=sleeps)
    assert sleeps == [2.0, 4.0]
    assert (tmp_path / "f").read_bytes() == CONTENT


def test_a_source_that_keeps_failing_is_unavailable(tmp_path):
    sleeps: list[float] = []
    source = MemorySource(plan=[{"fail": True}] * 5)
    with pytest.raises(WorkerError) as caught:
        download(source, tmp_path / "f", retry=RetryPolicy(attempts=3, backoff_seconds=1.0), sleeps=sleeps)
    assert caught.value.error_class == ErrorClass.SOURCE_UNAVAILABLE
    assert "after 3 attempts" in caught.value.message and "connection refused" in caught.value.message
    assert sleeps == [1.0, 2.0]  # no wait after the last attempt


def test_backoff_is_capped():
    assert RetryPolicy(backoff_seconds=10, max_backoff_seconds=30).delay(5) == 30


def test_retry_policy_from_the_environment(monkeypatch):
    monkeypatch.setenv("BOLTZ_WORKER_DOWNLOAD_ATTEMPTS", "7")
    monkeypatch.setenv("BOLTZ_WORKER_RETRY_BACKOFF_SECONDS", "0")
    assert RetryPolicy.from_env() == RetryPolicy(attempts=7, backoff_seconds=0.0)


def test_not_enough_space_fails_before_downloading(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda path: usage(100, 99, 1))
    source = MemorySource()
    with pytest.raises(WorkerError) as caught:
        download(source, tmp_path / "f")
    assert caught.value.error_class == ErrorClass.MODEL_CACHE_UNUSABLE
    assert "not enough space" in caught.value.message
    assert source.offsets == []


@pytest.mark.parametrize(
    "etag, expected",
    [
        (f'"{SHA}"', SHA),
        (f'W/"{SHA}"', SHA),
        (SHA.upper(), SHA),
        ('"a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"', None),  # git sha1 of a non-LFS file
        ('"d41d8cd98f00b204e9800998ecf8427e-3"', None),  # a CDN's multipart md5
        (None, None),
        ("", None),
    ],
)
def test_sha256_from_etag(etag, expected):
    assert sha256_from_etag(etag) == expected

"""Resumable, verified downloads of model files from any ranged source (Hugging Face over HTTP(S), S3).

A file is fetched to `<name>.partial` on the models volume, resumed from its current length after a cut
connection, checked against the size and sha256 the source published, and only then renamed to its final name,
so a consumer never sees a partial or unverified file under a final name.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from boltz_contract import ErrorClass, WorkerError
from boltz_worker.fileutil import human_bytes, sha256_file
from boltz_worker.model_cache.model_catalog import Bundle

log = logging.getLogger(__name__)

ENV_ATTEMPTS = "BOLTZ_WORKER_DOWNLOAD_ATTEMPTS"
ENV_BACKOFF = "BOLTZ_WORKER_RETRY_BACKOFF_SECONDS"
PROGRESS_LOG_INTERVAL_SECONDS = 15.0
T = TypeVar("T")


class TransientError(Exception):
    """A failure worth retrying: connection refused or cut, timeout, 5xx, throttling."""


@dataclass(frozen=True)
class RemoteFile:
    uri: str  # canonical source URI, recorded in the manifest and named in messages
    locator: str  # where the bytes are fetched from (e.g. the CDN URL a Hugging Face resolve redirects to)
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class RangeStream:
    chunks: Iterator[bytes]
    start: int  # offset the server honoured: 0 when it ignored the Range request
    total_size: int | None  # from Content-Length / Content-Range, when the server said


class RangedSource(Protocol):
    def describe(self, bundle: Bundle, file: str) -> RemoteFile: ...

    def open_from(self, remote: RemoteFile, offset: int) -> RangeStream: ...


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            attempts=max(1, int(os.environ.get(ENV_ATTEMPTS, cls.attempts))),
            backoff_seconds=max(0.0, float(os.environ.get(ENV_BACKOFF, cls.backoff_seconds))),
        )

    def delay(self, failed_attempt: int) -> float:
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (failed_attempt - 1))


@dataclass(frozen=True)
class VerifiedFile:
    uri: str
    bytes: int
    sha256: str


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def with_retries(
    retry: RetryPolicy, what: str, operation: Callable[[], T], sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run `operation`, retrying TransientError with exponential backoff; then fail as SOURCE_UNAVAILABLE."""
    last_error: TransientError | None = None
    for attempt in range(1, retry.attempts + 1):
        try:
            return operation()
        except TransientError as e:
            last_error = e
            log.warning("%s: attempt %d/%d failed: %s", what, attempt, retry.attempts, e)
            if attempt < retry.attempts:
                sleep(retry.delay(attempt))
    raise WorkerError(
        ErrorClass.SOURCE_UNAVAILABLE, f"{what}: source unavailable after {retry.attempts} attempts: {last_error}"
    )


def download_verified(
    source: RangedSource,
    bundle: Bundle,
    file: str,
    dest: Path,
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifiedFile:
    """Download `file` of `bundle` to `dest`, resuming and retrying; verify; rename into place atomically."""
    rel = bundle.file_path(file)
    partial = partial_path(dest)
    restarted = False

    def attempt() -> VerifiedFile:
        nonlocal restarted
        remote = source.describe(bundle, file)  # again on each attempt: CDN locations expire
        resumed = partial.exists() and partial.stat().st_size > 0
        _fetch_into(source, remote, partial, rel)
        try:
            return _verify_and_publish(partial, dest, rel, remote)
        except WorkerError as e:
            # A partial left from an older version of the file spoils a resumed download: start over once.
            if e.error_class != ErrorClass.CHECKSUM_MISMATCH or not resumed or restarted:
                raise
            restarted = True
            raise TransientError(f"the resumed download did not verify; starting over ({e.message})") from e

    return with_retries(retry, rel, attempt, sleep)


def _fetch_into(source: RangedSource, remote: RemoteFile, partial: Path, rel: str) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    if remote.size is not None and offset > remote.size:
        log.warning("%s: partial file is longer than the source's (%d > %d); starting over", rel, offset, remote.size)
        offset = 0
    if remote.size is not None and offset == remote.size:
        log.info("%s: partial download already complete (%s); verifying", rel, human_bytes(offset))
        return
    _check_free_space(partial, rel, None if remote.size is None else remote.size - offset)
    if offset:
        log.info("%s: resuming at %s of %s", rel, human_bytes(offset), human_bytes(remote.size))
    else:
        log.info("%s: downloading %s from %s", rel, human_bytes(remote.size), remote.uri)
    stream = source.open_from(remote, offset)
    if stream.start not in (0, offset):
        raise TransientError(f"asked for bytes from {offset}, the server answered from {stream.start}")
    if offset and stream.start != offset:
        log.warning("%s: the server ignored the Range request; starting over from byte 0", rel)
    expected = remote.size if remote.size is not None else stream.total_size
    written = _write_stream(stream, partial, rel, expected)
    if expected is not None and written < expected:
        raise TransientError(f"connection closed after {written} of {expected} bytes")


def _write_stream(stream: RangeStream, partial: Path, rel: str, expected: int | None) -> int:
    """Write the stream into `partial` at its start offset; return the file length reached."""
    progress = _Progress(rel, expected)
    mode = "r+b" if stream.start and partial.exists() else "wb"
    with open(partial, mode) as f:
        f.seek(stream.start)
        f.truncate()
        written = stream.start
        try:
            for chunk in stream.chunks:
                f.write(chunk)
                written += len(chunk)
                progress.update(written)
        finally:
            f.flush()
            os.fsync(f.fileno())
    return written


def _verify_and_publish(partial: Path, dest: Path, rel: str, remote: RemoteFile) -> VerifiedFile:
    actual_size = partial.stat().st_size
    actual_sha = sha256_file(partial)
    size_ok = remote.size is None or actual_size == remote.size
    sha_ok = remote.sha256 is None or actual_sha == remote.sha256
    if not (size_ok and sha_ok):
        partial.unlink(missing_ok=True)  # a retry must start from clean bytes
        raise WorkerError(
            ErrorClass.CHECKSUM_MISMATCH,
            f"{rel} from {remote.uri} does not match its checksum: expected sha256 {remote.sha256 or '(none)'} "
            f"and {remote.size} bytes, got sha256 {actual_sha} and {actual_size} bytes; the download was deleted",
        )
    if remote.sha256 is None:
        log.warning("%s: the source published no sha256; recording the computed one", rel)
    os.replace(partial, dest)
    log.info("%s: verified (%s, sha256 %s)", rel, human_bytes(actual_size), actual_sha)
    return VerifiedFile(uri=remote.uri, bytes=actual_size, sha256=actual_sha)


def _check_free_space(partial: Path, rel: str, needed: int | None) -> None:
    if needed is None:
        return
    free = shutil.disk_usage(partial.parent).free
    if free < needed:
        raise WorkerError(
            ErrorClass.MODEL_CACHE_UNUSABLE,
            f"not enough space on the model volume for {rel}: need {human_bytes(needed)}, "
            f"{human_bytes(free)} free; make the cache's volume larger",
        )


class _Progress:
    """Logs download progress at most every PROGRESS_LOG_INTERVAL_SECONDS."""

    def __init__(self, rel: str, total: int | None):
        self.rel = rel
        self.total = total
        self.next_log = time.monotonic() + PROGRESS_LOG_INTERVAL_SECONDS

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now < self.next_log:
            return
        self.next_log = now + PROGRESS_LOG_INTERVAL_SECONDS
        percent = f" ({100 * done // self.total}%)" if self.total else ""
        log.info("%s: %s of %s%s", self.rel, human_bytes(done), human_bytes(self.total), percent)

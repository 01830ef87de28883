"""Where a prediction's files go: an S3 prefix or a directory on a results PVC.

Every failure surfaces as WorkerError(RESULTS_STORE_ERROR): the Job retries it (network, credentials rotation).
"""

from __future__ import annotations

import logging
import mimetypes
import shutil
from pathlib import Path
from typing import Protocol

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import ErrorClass, ResultsTarget, S3Target, WorkerError
from boltz_worker.fileutil import atomic_write
from boltz_worker.results.s3util import join_key, make_s3_client

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".json": "application/json",
    ".cif": "chemical/x-mmcif",
    ".pdb": "chemical/x-pdb",
    ".yaml": "application/yaml",
    ".parquet": "application/vnd.apache.parquet",  # IANA-registered (2024); Python's mimetypes does not know it
}


class ResultsStore(Protocol):
    def put_file(self, rel: str, local_path: Path) -> None: ...

    def put_bytes(self, rel: str, data: bytes) -> None: ...

    def uri_for(self, rel: str) -> str: ...


def open_results_store(target: ResultsTarget, s3_client=None) -> ResultsStore:
    if (target.s3 is None) == (target.local_dir is None):
        raise WorkerError(ErrorClass.INVALID_INPUT, "results target needs exactly one of s3 or local_dir")
    if target.s3 is not None:
        return S3ResultsStore(target.uri, target.s3, s3_client)
    assert target.local_dir is not None  # exactly one of the two, checked above
    return LocalDirResultsStore(target.uri, Path(target.local_dir))


def _content_type(rel: str) -> str:
    suffix = Path(rel).suffix
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(rel)[0] or "application/octet-stream"


def _join_uri(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}"


class S3ResultsStore:
    def __init__(self, uri: str, target: S3Target, client=None):
        self.uri = uri
        self.bucket = target.bucket
        self.prefix = target.prefix
        self.client = client or make_s3_client(target.endpoint_url, target.region)

    def put_file(self, rel: str, local_path: Path) -> None:
        extra = {"ContentType": _content_type(rel)}
        self._call(rel, lambda: self.client.upload_file(str(local_path), self.bucket, self._key(rel), ExtraArgs=extra))

    def put_bytes(self, rel: str, data: bytes) -> None:
        self._call(
            rel,
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self._key(rel), Body=data, ContentType=_content_type(rel)
            ),
        )

    def uri_for(self, rel: str) -> str:
        return _join_uri(self.uri, rel)

    def _key(self, rel: str) -> str:
        return join_key(self.prefix, rel)

    def _call(self, rel: str, operation) -> None:
        try:
            operation()
        except (ClientError, BotoCoreError, Boto3Error) as e:
            raise WorkerError(
                ErrorClass.RESULTS_STORE_ERROR,
                f"upload of {rel} to s3://{self.bucket}/{self._key(rel)} failed: {e}",
            ) from e


class LocalDirResultsStore:
    """A directory on the results PVC. Each file lands under its final name by rename, never half-written."""

    def __init__(self, uri: str, base: Path):
        self.uri = uri
        self.base = base

    def put_file(self, rel: str, local_path: Path) -> None:
        def copy(f) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, f)

        self._write(rel, copy)

    def put_bytes(self, rel: str, data: bytes) -> None:
        self._write(rel, lambda f: f.write(data))

    def uri_for(self, rel: str) -> str:
        return _join_uri(self.uri, rel)

    def _write(self, rel: str, fill) -> None:
        dest = self.base / rel
        try:
            atomic_write(dest, fill)
        except OSError as e:
            raise WorkerError(
                ErrorClass.RESULTS_STORE_ERROR, f"writing {rel} to {self.uri} ({dest}) failed: {e}"
            ) from e

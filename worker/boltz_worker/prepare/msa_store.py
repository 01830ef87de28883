"""The MSA store: MSAs computed once per key (boltz_contract.msa), kept on a PVC directory or under an S3 prefix.

A key holds `<i>.csv` (msa_file(i)) for entity i of the request and MSA_COMPLETE_MARKER, written last: a key without
its marker is a miss (a prepare killed half-way), and the next prepare writes it again.
- local_dir: `<local_dir>/<key>/`, filled in a temporary directory beside it and renamed into place, so a reader
  sees a whole key or none. Two prepares finishing the same key: the first rename wins, the second drops its copy.
- S3: `<prefix>/<key>/<i>.csv`, then `<prefix>/<key>/_COMPLETE`. Each object is whole (S3 puts are atomic); two
  prepares of one key both write, the marker after their files, so a reader who sees a marker sees complete files.
Failures are WorkerError(RESULTS_STORE_ERROR): retried by the Job, like the results store's.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.msa import MSA_COMPLETE_MARKER, MsaStoreTarget, msa_file
from boltz_worker.results.s3util import NOT_FOUND_CODES, error_code, join_key, make_s3_client

log = logging.getLogger(__name__)


class MsaStore(Protocol):
    uri: str

    def get(self, key: str, count: int, dest: Path) -> list[Path] | None:
        """The key's files 0..count-1 as local paths (fetched under `dest` when remote), or None on a miss."""
        ...

    def put(self, key: str, files: list[Path]) -> None:
        """Store files[i] as msa_file(i) under `key`, the marker last."""
        ...


def open_msa_store(target: MsaStoreTarget, s3_client=None) -> MsaStore:
    """The store a PrepareRun names. Raises WorkerError(INTERNAL) unless exactly one of s3 / local_dir is set."""
    if (target.s3 is None) == (target.local_dir is None):
        raise WorkerError(ErrorClass.INTERNAL, "the MSA store needs exactly one of s3 or local_dir")
    if target.s3 is not None:
        s3 = target.s3
        client = s3_client or make_s3_client(s3.endpoint_url, s3.region, s3.credentials_env_prefix)
        return S3MsaStore(target.uri, s3.bucket, s3.prefix, client)
    assert target.local_dir is not None
    return LocalMsaStore(target.uri, Path(target.local_dir))


class LocalMsaStore:
    """`<base>/<key>/`, written whole by rename (see the module's docstring)."""

    def __init__(self, uri: str, base: Path):
        self.uri = uri
        self.base = base

    def get(self, key: str, count: int, dest: Path) -> list[Path] | None:
        folder = self.base / key
        files = [folder / msa_file(i) for i in range(count)]
        if not (folder / MSA_COMPLETE_MARKER).is_file() or not all(f.is_file() for f in files):
            return None
        return files  # read in place: the PVC is mounted here (and read-only in the GPU Job)

    def put(self, key: str, files: list[Path]) -> None:
        final = self.base / key
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=self.base))
            tmp.chmod(0o755)  # mkdtemp makes it 0700: the GPU Job's pod reads it
            for i, source in enumerate(files):
                shutil.copyfile(source, tmp / msa_file(i))
            (tmp / MSA_COMPLETE_MARKER).write_text("")
            _fsync_dir(tmp)
            if final.exists() and not (final / MSA_COMPLETE_MARKER).is_file():
                self._discard(final)  # a half-written key (not ours: we never write in place)
            try:
                os.rename(tmp, final)
            except OSError:  # ENOTEMPTY/EEXIST: another prepare stored the key first; its files are as good
                log.info("MSA store key %s was stored meanwhile by another prepare: keeping that copy", key)
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(self.base)
        except OSError as e:
            raise WorkerError(ErrorClass.RESULTS_STORE_ERROR, f"writing {key} to the MSA store {self.uri} failed: "
                              f"{e}") from e  # fmt: skip

    def _discard(self, folder: Path) -> None:
        aside = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".stale", dir=self.base))
        os.rename(folder, aside / "key")
        shutil.rmtree(aside, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3MsaStore:
    """`<prefix>/<key>/<i>.csv` and the marker (see the module's docstring)."""

    def __init__(self, uri: str, bucket: str, prefix: str, client):
        self.uri = uri
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    def get(self, key: str, count: int, dest: Path) -> list[Path] | None:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key, MSA_COMPLETE_MARKER))
        except ClientError as e:
            if error_code(e) in NOT_FOUND_CODES:
                return None
            raise self._error("looking up", key, e) from e
        except (BotoCoreError, Boto3Error) as e:
            raise self._error("looking up", key, e) from e
        dest.mkdir(parents=True, exist_ok=True)
        files = []
        for i in range(count):
            path = dest / msa_file(i)
            try:
                self.client.download_file(self.bucket, self._key(key, msa_file(i)), str(path))
            except (ClientError, BotoCoreError, Boto3Error) as e:
                raise self._error("fetching", key, e) from e
            files.append(path)
        return files

    def put(self, key: str, files: list[Path]) -> None:
        try:
            for i, source in enumerate(files):
                self.client.upload_file(str(source), self.bucket, self._key(key, msa_file(i)),
                                        ExtraArgs={"ContentType": "text/csv"})  # fmt: skip
            self.client.put_object(Bucket=self.bucket, Key=self._key(key, MSA_COMPLETE_MARKER), Body=b"")
        except (ClientError, BotoCoreError, Boto3Error) as e:
            raise self._error("storing", key, e) from e

    def _key(self, key: str, name: str) -> str:
        return join_key(self.prefix, key, name)

    def _error(self, doing: str, key: str, e: Exception) -> WorkerError:
        return WorkerError(ErrorClass.RESULTS_STORE_ERROR, f"{doing} {key} in the MSA store {self.uri} "
                           f"(s3://{self.bucket}/{self._key(key, '')}) failed: {e}")  # fmt: skip

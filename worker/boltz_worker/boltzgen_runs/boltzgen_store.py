"""Reading a campaign's results store back (markers, shard listings, downloads) and deriving sub-targets.

results_store.py writes; a BoltzGen campaign also reads what its own Jobs wrote: the design shards look for their
completion marker, the filter Job downloads the complete shards. Same two kinds of store (S3 prefix or PVC dir),
same error class on failure (RESULTS_STORE_ERROR, retried).
"""

from __future__ import annotations

import builtins
import logging
import shutil
from pathlib import Path, PurePosixPath

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import ErrorClass, ResultsTarget, S3Target, WorkerError
from boltz_worker.results.s3util import NOT_FOUND_CODES, error_code, join_key, make_s3_client

log = logging.getLogger(__name__)


def sub_target(target: ResultsTarget, rel: str) -> ResultsTarget:
    """The target for `rel` under `target` (e.g. shards/3): same store, longer prefix/path/URI."""
    rel = _safe_rel(rel)
    s3 = target.s3.model_copy(update={"prefix": join_key(target.s3.prefix, rel)}) if target.s3 else None
    local_dir = str(Path(target.local_dir) / rel) if target.local_dir is not None else None
    return ResultsTarget(uri=f"{target.uri.rstrip('/')}/{rel}", s3=s3, local_dir=local_dir)


class StoreReader:
    """Read access to a results target: exists, list (relative paths, recursive), download a prefix."""

    def __init__(self, target: ResultsTarget, s3_client=None):
        if (target.s3 is None) == (target.local_dir is None):
            raise WorkerError(ErrorClass.INVALID_INPUT, "results target needs exactly one of s3 or local_dir")
        self.target = target
        self._client = s3_client
        if target.s3 is not None and self._client is None:
            self._client = make_s3_client(target.s3.endpoint_url, target.s3.region)

    def exists(self, rel: str) -> bool:
        rel = _safe_rel(rel)
        if self.target.local_dir is not None:
            return (Path(self.target.local_dir) / rel).is_file()
        s3 = self._s3()
        try:
            self._client.head_object(Bucket=s3.bucket, Key=join_key(s3.prefix, rel))
            return True
        except ClientError as e:
            if error_code(e) in NOT_FOUND_CODES:
                return False
            raise self._error(f"checking {rel}", e) from e
        except (BotoCoreError, Boto3Error) as e:
            raise self._error(f"checking {rel}", e) from e

    def read_bytes(self, rel: str) -> bytes:
        rel = _safe_rel(rel)
        if self.target.local_dir is not None:
            try:
                return (Path(self.target.local_dir) / rel).read_bytes()
            except OSError as e:
                raise self._error(f"reading {rel}", e) from e
        s3 = self._s3()
        try:
            return self._client.get_object(Bucket=s3.bucket, Key=join_key(s3.prefix, rel))["Body"].read()
        except (ClientError, BotoCoreError, Boto3Error) as e:
            raise self._error(f"reading {rel}", e) from e

    def list(self, rel_prefix: str = "") -> list[str]:
        """Every file under rel_prefix/, as paths relative to rel_prefix, sorted."""
        rel_prefix = _safe_rel(rel_prefix) if rel_prefix else ""
        if self.target.local_dir is not None:
            base = Path(self.target.local_dir) / rel_prefix
            if not base.is_dir():
                return []
            return sorted(
                p.relative_to(base).as_posix()
                for p in base.rglob("*")
                if p.is_file() and not p.name.endswith(".tmp")  # LocalDirResultsStore's in-flight temp files
            )
        s3 = self._s3()
        key_prefix = join_key(s3.prefix, rel_prefix)
        key_prefix = f"{key_prefix}/" if key_prefix else ""
        found: list[str] = []
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=key_prefix):
                found += [obj["Key"][len(key_prefix) :] for obj in page.get("Contents", [])]
        except (ClientError, BotoCoreError, Boto3Error) as e:
            raise self._error(f"listing {rel_prefix or '/'}", e) from e
        return sorted(k for k in found if k and not k.endswith("/"))

    def download(self, rel_prefix: str, dest: Path, exclude: tuple[str, ...] = ()) -> builtins.list[str]:
        """Copy every file under rel_prefix/ into dest (keeping relative paths); returns what was copied."""
        return self.download_files(rel_prefix, [rel for rel in self.list(rel_prefix) if rel not in exclude], dest)

    def download_files(self, rel_prefix: str, rels: builtins.list[str], dest: Path) -> builtins.list[str]:
        """Copy the files `rels` (paths relative to rel_prefix/) into dest, keeping relative paths; returns `rels`.
        Raises WorkerError(RESULTS_STORE_ERROR) when one cannot be read."""
        for rel in rels:
            local = dest / _safe_rel(rel)
            local.parent.mkdir(parents=True, exist_ok=True)
            source_rel = f"{rel_prefix.rstrip('/')}/{rel}" if rel_prefix else rel
            if self.target.local_dir is not None:
                try:
                    shutil.copyfile(Path(self.target.local_dir) / _safe_rel(source_rel), local)
                except OSError as e:
                    raise self._error(f"copying {source_rel}", e) from e
            else:
                s3 = self._s3()
                try:
                    self._client.download_file(s3.bucket, join_key(s3.prefix, _safe_rel(source_rel)), str(local))
                except (ClientError, BotoCoreError, Boto3Error) as e:
                    raise self._error(f"downloading {source_rel}", e) from e
        return list(rels)

    def _s3(self) -> S3Target:
        s3 = self.target.s3
        assert s3 is not None  # __init__ checked exactly one of s3 / local_dir; the callers handled local_dir
        return s3

    def _error(self, what: str, e: BaseException) -> WorkerError:
        return WorkerError(ErrorClass.RESULTS_STORE_ERROR, f"{what} in {self.target.uri} failed: {e}")


def _safe_rel(rel: str) -> str:
    """A relative POSIX path without '..' or a leading '/': keys never escape their target."""
    path = PurePosixPath(rel.strip("/"))
    if not rel.strip("/") or path.is_absolute() or ".." in path.parts:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"unsafe relative path {rel!r}")
    return path.as_posix()

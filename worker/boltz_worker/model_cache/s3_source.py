"""An S3 prefix holding the cache layout (`<prefix>/<bundle>/<file>`) as a ranged source, for air-gapped clusters.

S3 publishes no sha256 of its own for ordinary uploads. When the prefix also holds a `manifest.json` (a populated
cache copied as it is, e.g. with `aws s3 sync /models s3://bucket/prefix`), its sha256s are the expected ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import MANIFEST_FILE, ErrorClass, S3Source, WorkerError
from boltz_worker.fileutil import CHUNK
from boltz_worker.model_cache.downloads import RangeStream, RemoteFile, TransientError
from boltz_worker.model_cache.manifest import ModelManifest
from boltz_worker.model_cache.model_catalog import Bundle
from boltz_worker.results.s3util import DENIED_CODES, NOT_FOUND_CODES, error_code, join_key, make_s3_client

log = logging.getLogger(__name__)


class S3Files:
    def __init__(self, source: S3Source, client=None):
        self.bucket = source.bucket
        self.prefix = source.prefix
        self.client = client or make_s3_client(source.endpoint_url, source.region)
        self._published: ModelManifest | None = None
        self._published_loaded = False

    def describe(self, bundle: Bundle, file: str) -> RemoteFile:
        rel = bundle.file_path(file)
        key = join_key(self.prefix, rel)
        uri = f"s3://{self.bucket}/{key}"
        head = self._call(uri, lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        published = self._published_manifest()
        entry = published.files.get(rel) if published else None
        return RemoteFile(uri=uri, locator=key, size=int(head["ContentLength"]), sha256=entry.sha256 if entry else None)

    def open_from(self, remote: RemoteFile, offset: int) -> RangeStream:
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        response = self._call(
            remote.uri, lambda: self.client.get_object(Bucket=self.bucket, Key=remote.locator, **extra)
        )
        start = offset if offset and response.get("ContentRange") else 0
        total = int(response["ContentLength"]) + start
        return RangeStream(chunks=_chunks(response["Body"], remote.uri), start=start, total_size=total)

    def _published_manifest(self) -> ModelManifest | None:
        if not self._published_loaded:
            self._published_loaded = True
            key = join_key(self.prefix, MANIFEST_FILE)
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                self._published = ModelManifest.model_validate_json(body)
                log.info("s3://%s/%s: using its sha256s as the expected checksums", self.bucket, key)
            except ClientError as e:
                if error_code(e) not in NOT_FOUND_CODES:
                    log.warning("s3://%s/%s: not readable (%s); checksums cannot be verified", self.bucket, key, e)
            except (BotoCoreError, ValueError) as e:
                log.warning("s3://%s/%s: ignored (%s)", self.bucket, key, e)
        return self._published

    @staticmethod
    def _call(uri: str, operation):
        try:
            return operation()
        except ClientError as e:
            code = error_code(e)
            if code in NOT_FOUND_CODES:
                raise WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"{uri}: not found ({code})") from e
            if code in DENIED_CODES:
                raise WorkerError(
                    ErrorClass.SOURCE_UNAVAILABLE, f"{uri}: access denied ({code}); check the source's credentials"
                ) from e
            raise TransientError(f"{uri}: {e}") from e
        except BotoCoreError as e:
            raise TransientError(f"{uri}: {e}") from e


def _chunks(body, uri: str) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK)
    except (BotoCoreError, OSError) as e:
        raise TransientError(f"{uri}: read failed: {e}") from e
    finally:
        body.close()

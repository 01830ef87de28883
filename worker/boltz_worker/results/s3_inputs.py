"""Input files given as S3 URIs (Boltz MSAs and templates, BoltzGen target structures): fetched before the run,
to the path the rendered input refers to, with errors a user can act on."""

from __future__ import annotations

import logging
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import ErrorClass, S3Download, WorkerError
from boltz_worker.results.s3util import DENIED_CODES, NOT_FOUND_CODES, error_code, make_s3_client, parse_s3_uri

log = logging.getLogger(__name__)


def fetch_downloads(downloads: list[S3Download]) -> None:
    """Fetch each download to its dest, one client per (endpoint, region, credentials prefix): a download with
    credentials_env_prefix P uses $P"AWS_ACCESS_KEY_ID"/$P"AWS_SECRET_ACCESS_KEY" when set (s3util.make_s3_client).
    Raises WorkerError: INVALID_INPUT (missing, denied, too large), SOURCE_UNAVAILABLE (anything else)."""
    clients: dict[tuple, object] = {}
    for download in downloads:
        key = (download.endpoint_url, download.region, download.credentials_env_prefix)
        if key not in clients:
            clients[key] = make_s3_client(download.endpoint_url, download.region, download.credentials_env_prefix)
        _fetch_one(clients[key], download)


def _fetch_one(client, download: S3Download) -> None:
    try:
        bucket, key = parse_s3_uri(download.uri)
    except ValueError as e:
        raise WorkerError(ErrorClass.INVALID_INPUT, str(e)) from e
    dest = Path(download.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("fetching %s to %s", download.uri, dest)
    try:
        if download.max_bytes is not None:
            size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
            if size > download.max_bytes:
                raise WorkerError(
                    ErrorClass.INVALID_INPUT,
                    f"input file {download.uri} is {size} bytes; at most {download.max_bytes} are allowed",
                )
        client.download_file(bucket, key, str(dest))
    except ClientError as e:
        code = error_code(e)
        if code in NOT_FOUND_CODES:
            raise WorkerError(ErrorClass.INVALID_INPUT, f"input file {download.uri} does not exist ({code})") from e
        if code in DENIED_CODES:
            raise WorkerError(
                ErrorClass.INVALID_INPUT, f"access to input file {download.uri} was denied ({code}); check credentials"
            ) from e
        raise WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"could not fetch input file {download.uri}: {e}") from e
    except BotoCoreError as e:
        raise WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"could not fetch input file {download.uri}: {e}") from e

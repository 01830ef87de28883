"""S3 with the user's own credentials (boto3's usual chain: environment, profile, SSO...): the client, and the upload
of inputs too large for a ConfigMap (downloads: fetch.S3Source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .errors import PluginError


def s3_client(endpoint: str | None = None, region: str | None = None) -> Any:
    """A client for `endpoint` (an S3-compatible store; AWS when None, or $AWS_ENDPOINT_URL which boto3 reads)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region or None,
        config=Config(s3={"addressing_style": "path"} if endpoint else {}, retries={"max_attempts": 3}),
    )


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.strip("/")


def upload(s3: Any, path: Path, uri: str) -> None:
    bucket, key = split_uri(uri)
    try:
        s3.upload_file(str(path), bucket, key)
    except (BotoCoreError, ClientError, OSError) as e:
        raise PluginError(f"cannot upload {path} to {uri}: {e}") from e

"""boto3 plumbing shared by the S3 model source, input downloads and the S3 results store.

Credentials always come from the standard AWS_* environment (a Secret), never from run.json.
"""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
DENIED_CODES = frozenset(
    {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidToken"}
)


def make_s3_client(endpoint_url: str | None = None, region: str | None = None):
    # Path-style addressing for custom endpoints: most self-hosted S3 servers do not serve bucket subdomains.
    s3_options = {"addressing_style": "path"} if endpoint_url else {}
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        s3=s3_options,
    )
    # A session of its own: the default session caches credentials, and these come from the environment now.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/some/key' -> ('bucket', 'some/key')."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"s3 URI needs a bucket and a key: {uri!r}")
    return bucket, key


def join_key(*parts: str) -> str:
    """Join key parts with single slashes, dropping empty parts (an empty prefix means the bucket root)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return None

"""boto3 plumbing shared by the S3 model source, input downloads and the S3 results store.

Credentials always come from the environment (a Secret), never from run.json: the standard AWS_* variables, or,
for a client made with a credentials prefix P, P + AWS_ACCESS_KEY_ID / P + AWS_SECRET_ACCESS_KEY (and
P + AWS_SESSION_TOKEN) when those are set (the MSA store's MSA_STORE_AWS_*, beside the results store's AWS_*).
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
DENIED_CODES = frozenset(
    {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "InvalidToken"}
)


def make_s3_client(endpoint_url: str | None = None, region: str | None = None, credentials_env_prefix: str = ""):
    """A boto3 S3 client. With `credentials_env_prefix` P, the keys come from $P"AWS_ACCESS_KEY_ID" and
    $P"AWS_SECRET_ACCESS_KEY" (and $P"AWS_SESSION_TOKEN") when both are set, else from boto3's usual chain."""
    # Path-style addressing for custom endpoints: most self-hosted S3 servers do not serve bucket subdomains.
    s3_options = {"addressing_style": "path"} if endpoint_url else {}
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        s3=s3_options,
    )
    # A session of its own: the default session caches credentials, and these come from the environment now.
    session = boto3.session.Session(**prefixed_credentials(credentials_env_prefix))
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def prefixed_credentials(prefix: str) -> dict[str, str]:
    """boto3 Session keyword arguments from $<prefix>AWS_ACCESS_KEY_ID, ..._SECRET_ACCESS_KEY, ..._SESSION_TOKEN;
    empty (boto3's own chain) without a prefix or when the key id or secret is not set."""
    if not prefix:
        return {}
    key_id = os.environ.get(f"{prefix}AWS_ACCESS_KEY_ID")
    secret = os.environ.get(f"{prefix}AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return {}
    credentials = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    token = os.environ.get(f"{prefix}AWS_SESSION_TOKEN")
    if token:
        credentials["aws_session_token"] = token
    return credentials


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

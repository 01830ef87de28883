"""S3 with the user's own credentials (boto3's usual chain: environment, profile, SSO...): upload the inputs too large
for a ConfigMap, and download a run's results, checked against its result.json."""

from __future__ import annotations

import hashlib
import json
import posixpath
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import RESULT_FILE, PredictionResult

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


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = split_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except (BotoCoreError, ClientError) as e:
        raise PluginError(f"cannot read {uri}: {e}") from e


def _safe_rel(rel: str) -> str:
    """A relative path from a manifest, refused if it could write outside the output folder."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts:
        raise PluginError(f"result.json lists an unsafe path {rel!r}")
    return rel


def download_prediction(s3: Any, uri: str, out: Path) -> list[Path]:
    """Every file a prediction's result.json lists, into `out`, each checked for size and sha256; result.json
    itself last. Raises PluginError when result.json is missing (the upload did not finish) or a file differs."""
    manifest_bytes = _get(s3, f"{uri}/{RESULT_FILE}")
    try:
        manifest = PredictionResult.model_validate_json(manifest_bytes)
    except ValueError as e:
        raise PluginError(f"{uri}/{RESULT_FILE} is not a complete prediction result: {e}") from e
    written = []
    for f in manifest.files:
        rel = _safe_rel(f.path)
        data = _get(s3, f"{uri}/{rel}")
        if len(data) != f.bytes or (f.sha256 and hashlib.sha256(data).hexdigest() != f.sha256):
            raise PluginError(
                f"{uri}/{rel} does not match result.json ({len(data)} bytes, expected {f.bytes} with sha256 {f.sha256})"
            )
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    (out / RESULT_FILE).write_bytes(manifest_bytes)
    return [*written, out / RESULT_FILE]


def download_campaign(s3: Any, uri: str, out: Path) -> list[Path]:
    """A campaign's final designs and metrics (`<uri>/final/`), checked against the count its result.json gives."""
    final = f"{uri}/final"
    manifest_bytes = _get(s3, f"{final}/{RESULT_FILE}")
    try:
        expected = int(json.loads(manifest_bytes)["files"])
    except (ValueError, KeyError, TypeError) as e:
        raise PluginError(f"{final}/{RESULT_FILE} is not a complete campaign result: {e}") from e
    bucket, prefix = split_uri(final)
    keys = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            keys += [o["Key"] for o in page.get("Contents", [])]
    except (BotoCoreError, ClientError) as e:
        raise PluginError(f"cannot list {final}/: {e}") from e
    rels = sorted(_safe_rel(posixpath.relpath(k, prefix)) for k in keys)
    rels = [r for r in rels if r != RESULT_FILE]
    if len(rels) != expected:
        raise PluginError(f"{final}/ holds {len(rels)} files, result.json says {expected}: incomplete or changed")
    written = []
    for rel in rels:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_get(s3, f"{final}/{rel}"))
        written.append(target)
    (out / RESULT_FILE).write_bytes(manifest_bytes)
    return [*written, out / RESULT_FILE]

"""Downloading a finished run's results, from any store, checked against the result.json its worker wrote last.

A `Source` reads files relative to a run's results URI (S3 with the user's credentials, or a folder copied out of
a PVC by a reader pod). A prediction's result.json lists every file with its size and sha256; a campaign's gives
the number of files under `final/`. A screen has no result.json: its ranked table (written last, by the rank step)
lists every ligand and its structure file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from boltz_contract import REPORT_FILE, RESULT_FILE, PredictionResult
from boltz_contract.screen import RANKED_CSV, RANKED_PARQUET

from .errors import PluginError
from .s3 import split_uri


class Source(Protocol):
    uri: str

    def read(self, rel: str) -> bytes: ...

    def list(self) -> list[str]: ...


class S3Source:
    """Files under an s3:// URI."""

    def __init__(self, client: Any, uri: str):
        self.client, self.uri = client, uri.rstrip("/")

    def read(self, rel: str) -> bytes:
        bucket, key = split_uri(f"{self.uri}/{rel}")
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as e:
            raise PluginError(f"cannot read {self.uri}/{rel}: {e}") from e

    def list(self) -> list[str]:
        bucket, prefix = split_uri(self.uri)
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
                keys += [o["Key"] for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as e:
            raise PluginError(f"cannot list {self.uri}/: {e}") from e
        return [posixpath.relpath(k, prefix) for k in keys]


class LocalSource:
    """Files in a local folder (a PVC's results, copied out by a reader pod); `uri` names where they came from."""

    def __init__(self, root: Path, uri: str):
        self.root, self.uri = root, uri.rstrip("/")

    def read(self, rel: str) -> bytes:
        try:
            return (self.root / rel).read_bytes()
        except OSError as e:
            raise PluginError(f"cannot read {self.uri}/{rel}: {e}") from e

    def list(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())


def _safe_rel(rel: str) -> str:
    """A relative path from a manifest or listing, refused if it could write outside the output folder."""
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts:
        raise PluginError(f"the results name an unsafe path {rel!r}")
    return rel


def _write(out: Path, rel: str, data: bytes) -> Path:
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def fetch_prediction(source: Source, out: Path) -> list[Path]:
    """Every file the prediction's result.json lists, into `out`, each checked for size and sha256; result.json
    itself last. Raises PluginError when result.json is missing (the upload did not finish) or a file differs."""
    manifest_bytes = source.read(RESULT_FILE)
    try:
        manifest = PredictionResult.model_validate_json(manifest_bytes)
    except ValueError as e:
        raise PluginError(f"{source.uri}/{RESULT_FILE} is not a complete prediction result: {e}") from e
    written = []
    for f in manifest.files:
        rel = _safe_rel(f.path)
        data = source.read(rel)
        if len(data) != f.bytes or (f.sha256 and hashlib.sha256(data).hexdigest() != f.sha256):
            raise PluginError(
                f"{source.uri}/{rel} does not match result.json "
                f"({len(data)} bytes, expected {f.bytes} with sha256 {f.sha256})"
            )
        written.append(_write(out, rel, data))
    return [*written, _write(out, RESULT_FILE, manifest_bytes)]


def fetch_campaign(source: Source, out: Path) -> list[Path]:
    """A campaign's final designs and merged metrics (`source` is its `<uri>/final`), checked against the count of
    files its result.json gives."""
    manifest_bytes = source.read(RESULT_FILE)
    try:
        expected = int(json.loads(manifest_bytes)["files"])
    except (ValueError, KeyError, TypeError) as e:
        raise PluginError(f"{source.uri}/{RESULT_FILE} is not a complete campaign result: {e}") from e
    rels = [_safe_rel(r) for r in sorted(source.list()) if r != RESULT_FILE]
    if len(rels) != expected:
        raise PluginError(f"{source.uri}/ holds {len(rels)} files, result.json says {expected}: incomplete or changed")
    written = [_write(out, rel, source.read(rel)) for rel in rels]
    return [*written, _write(out, RESULT_FILE, manifest_bytes)]


def fetch_screen(source: Source, out: Path, results: dict[str, Any], everything: bool = False) -> list[Path]:
    """A screen's ranked table (RANKED_CSV, and RANKED_PARQUET when `results`, the status's, names it), its HTML
    report (when `results` names one) and the structure files of its top ligands (`results["topLigands"]`; every
    ligand's when `everything`), into `out`. Raises PluginError when the table is missing or unreadable, or a top
    ligand of the status is not in it."""
    table = source.read(RANKED_CSV)
    try:
        rows = {row["id"]: row for row in csv.DictReader(io.StringIO(table.decode()))}
    except (UnicodeDecodeError, KeyError, csv.Error) as e:
        raise PluginError(f"{source.uri}/{RANKED_CSV} is not a ranked table: {e}") from e
    top = [ligand["id"] for ligand in results.get("topLigands") or []]
    missing = [i for i in top if i not in rows]
    if missing:
        raise PluginError(f"{source.uri}/{RANKED_CSV} lacks the top ligands {missing} of the status: changed?")
    wanted = list(rows) if everything else top
    structures = [_safe_rel(rows[i]["structure"]) for i in wanted if rows[i].get("structure")]
    written = [_write(out, rel, source.read(rel)) for rel in structures]
    report = str(results.get("report") or "")
    if report:
        # the status gives the report's URI; under this source it is a relative path (REPORT_FILE as written)
        rel = report.removeprefix(f"{source.uri}/") if report.startswith(f"{source.uri}/") else REPORT_FILE
        written.append(_write(out, _safe_rel(rel), source.read(rel)))
    if results.get("parquet"):  # the same table typed, when the rank step wrote it (status.results.parquet)
        written.append(_write(out, RANKED_PARQUET, source.read(RANKED_PARQUET)))
    return [*written, _write(out, RANKED_CSV, table)]

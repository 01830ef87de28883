"""`<models_dir>/manifest.json`: what populate verified, so a re-run can trust a file without reading it again."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from boltz_contract import CONTRACT_VERSION, MANIFEST_FILE
from boltz_worker.fileutil import atomic_write_bytes, utc_now

log = logging.getLogger(__name__)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")  # tolerate fields written by newer workers


class FileEntry(_Entry):
    bytes: int
    sha256: str
    source: str  # URL, s3:// URI or "preloaded"
    verified_at: str


class DirectoryEntry(_Entry):
    files: int
    bytes: int
    extracted_from: str | None = None  # archive path, None when preloaded
    archive_sha256: str | None = None  # which archive version the directory came from
    verified_at: str


class ModelManifest(_Entry):
    contract: str = CONTRACT_VERSION
    created_at: str = ""
    updated_at: str = ""
    files: dict[str, FileEntry] = {}  # key: path relative to the models dir
    directories: dict[str, DirectoryEntry] = {}  # key: "bundle/dir/"

    @classmethod
    def load(cls, models_dir: Path) -> ModelManifest:
        path = models_dir / MANIFEST_FILE
        if not path.exists():
            return cls(created_at=utc_now())
        try:
            return cls.model_validate_json(path.read_bytes())
        except (ValidationError, ValueError) as e:
            # An unreadable manifest only costs re-hashing: every file will be verified again.
            log.warning("ignoring unreadable %s (%s); files will be re-verified", path, str(e).splitlines()[0])
            return cls(created_at=utc_now())

    def save(self, models_dir: Path) -> None:
        self.updated_at = utc_now()
        if not self.created_at:
            self.created_at = self.updated_at
        atomic_write_bytes(models_dir / MANIFEST_FILE, self.model_dump_json(indent=2).encode() + b"\n")

    def matching_file(self, rel: str, local: Path) -> FileEntry | None:
        """The recorded entry when `local` still has the recorded size (and a sha256 was recorded)."""
        entry = self.files.get(rel)
        if entry and entry.sha256 and local.is_file() and local.stat().st_size == entry.bytes:
            return entry
        return None

"""`boltz-worker populate`: fill the model cache volume once, verified, resumable, idempotent.

Layout (see model_catalog): <models_dir>/<bundle>/<file> for every downloaded file, <bundle>/<dir>/ for every
extracted archive, and <models_dir>/manifest.json recording what was verified.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from boltz_contract import ErrorClass, FileSummary, PopulateRun, PopulateSource, RunSummary, WorkerError
from boltz_worker.fileutil import human_bytes, sha256_file, utc_now
from boltz_worker.model_cache.downloads import RangedSource, RetryPolicy, download_verified, with_retries
from boltz_worker.model_cache.hf_source import HuggingFaceFiles
from boltz_worker.model_cache.manifest import DirectoryEntry, FileEntry, ModelManifest
from boltz_worker.model_cache.model_catalog import Bundle, Extracted
from boltz_worker.model_cache.model_catalog import bundle as bundle_named
from boltz_worker.model_cache.s3_source import S3Files

log = logging.getLogger(__name__)

PRELOADED = "preloaded"


@dataclass
class _Counts:
    downloaded: int = 0
    reused: int = 0


def populate(run: PopulateRun) -> RunSummary:
    started = time.monotonic()
    models_dir = Path(run.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    source = open_source(run.source)  # None: preloaded, verify only
    retry = RetryPolicy.from_env()
    manifest = ModelManifest.load(models_dir)
    counts = _Counts()
    bundles = [bundle_named(name) for name in run.bundles]
    if source is None:  # every bundle's layout first: a missing file fails before the others are hashed
        for bundle in bundles:
            _require_preloaded_layout(bundle, models_dir / bundle.name)
    for bundle in bundles:
        _populate_bundle(models_dir, bundle, source, retry, manifest, counts)
    make_world_readable(models_dir)
    summaries = _file_summaries(manifest, bundles)
    total = sum(s.bytes for s in summaries)
    message = f"{counts.downloaded} downloaded, {counts.reused} already present; {human_bytes(total)} in the cache"
    log.info("populate done: %s", message)
    return RunSummary(
        ok=True,
        message=message,
        files=summaries,
        total_bytes=total,
        duration_seconds=round(time.monotonic() - started, 1),
    )


def open_source(source: PopulateSource) -> RangedSource | None:
    given = {"huggingface": source.huggingface, "s3": source.s3, PRELOADED: source.preloaded}
    chosen = [name for name, value in given.items() if value]
    if len(chosen) != 1:
        raise WorkerError(
            ErrorClass.INVALID_INPUT, f"populate needs exactly one source (huggingface, s3, preloaded), got {chosen}"
        )
    if source.huggingface:
        return HuggingFaceFiles(source.huggingface.endpoint, _token(source.huggingface.token_env))
    if source.s3:
        return S3Files(source.s3)
    return None


def _token(token_env: str | None) -> str | None:
    if not token_env:
        return None
    token = os.environ.get(token_env, "").strip()
    if not token:
        log.warning("token_env is %s but that variable is empty: downloading without a token", token_env)
    return token or None


def _populate_bundle(
    models_dir: Path,
    bundle: Bundle,
    source: RangedSource | None,
    retry: RetryPolicy,
    manifest: ModelManifest,
    counts: _Counts,
) -> None:
    bundle_dir = models_dir / bundle.name
    bundle_dir.mkdir(exist_ok=True)
    _remove_leftover_temp_dirs(bundle_dir)
    for file in bundle.files:
        rel = bundle.file_path(file)
        entry, downloaded = _ensure_file(models_dir, bundle, file, source, retry, manifest)
        if downloaded:
            counts.downloaded += 1
        else:
            counts.reused += 1
        manifest.files[rel] = entry
        manifest.save(models_dir)  # after each file: a killed run keeps what it verified
    for extracted in bundle.extracted:
        manifest.directories[bundle.dir_path(extracted.directory)] = _ensure_extracted(
            models_dir, bundle, extracted, manifest, preloaded=source is None
        )
        manifest.save(models_dir)


# ---------------------------------------------------------------------------------------------- files


def _ensure_file(
    models_dir: Path,
    bundle: Bundle,
    file: str,
    source: RangedSource | None,
    retry: RetryPolicy,
    manifest: ModelManifest,
) -> tuple[FileEntry, bool]:
    """The file's manifest entry, and whether it had to be downloaded."""
    rel = bundle.file_path(file)
    dest = models_dir / rel
    recorded = manifest.matching_file(rel, dest)
    if recorded:
        log.info("%s: present and matches the manifest (%s); not downloading", rel, human_bytes(recorded.bytes))
        return recorded, False
    if source is None:
        log.info("%s: hashing the preloaded file", rel)
        return _entry(dest, PRELOADED, sha256_file(dest)), False
    if dest.is_file():
        entry = _reverify_present(source, bundle, file, dest, retry)
        if entry:
            return entry, False
        dest.unlink()  # stale or corrupt: free its space before downloading again
    verified = download_verified(source, bundle, file, dest, retry)
    return FileEntry(bytes=verified.bytes, sha256=verified.sha256, source=verified.uri, verified_at=utc_now()), True


def _reverify_present(
    source: RangedSource, bundle: Bundle, file: str, dest: Path, retry: RetryPolicy
) -> FileEntry | None:
    """A file present but not in the manifest (e.g. a run killed before recording it): hash it, compare."""
    rel = bundle.file_path(file)
    remote = with_retries(retry, rel, lambda: source.describe(bundle, file))
    size = dest.stat().st_size
    if remote.size is not None and size != remote.size:
        log.warning("%s: present but %d bytes, the source has %d; downloading again", rel, size, remote.size)
        return None
    log.info("%s: present but not in the manifest; verifying by hashing", rel)
    sha = sha256_file(dest)
    if remote.sha256 is not None and sha != remote.sha256:
        log.warning("%s: present but sha256 %s, the source has %s; downloading again", rel, sha, remote.sha256)
        return None
    log.info("%s: present and verified (sha256 %s); not downloading", rel, sha)
    return _entry(dest, remote.uri, sha)


def _entry(path: Path, source: str, sha256: str) -> FileEntry:
    return FileEntry(bytes=path.stat().st_size, sha256=sha256, source=source, verified_at=utc_now())


def _require_preloaded_layout(bundle: Bundle, bundle_dir: Path) -> None:
    problems = bundle.cache_problems(bundle_dir)
    if problems:
        raise WorkerError(
            ErrorClass.MODEL_CACHE_UNUSABLE,
            f"preloaded model cache at {bundle_dir} is unusable: {', '.join(problems)}",
        )


# ---------------------------------------------------------------------------------------------- archives


def _ensure_extracted(
    models_dir: Path, bundle: Bundle, extracted: Extracted, manifest: ModelManifest, preloaded: bool
) -> DirectoryEntry:
    rel_dir = bundle.dir_path(extracted.directory)
    target = models_dir / bundle.name / extracted.directory
    archive_rel = bundle.file_path(extracted.archive)
    if preloaded:
        files, nbytes = _dir_stats(target)
        return DirectoryEntry(files=files, bytes=nbytes, verified_at=utc_now())
    archive_sha = manifest.files[archive_rel].sha256
    recorded = manifest.directories.get(rel_dir)
    if recorded and recorded.archive_sha256 == archive_sha and target.is_dir() and any(target.iterdir()):
        log.info("%s: already extracted from this %s; not extracting", rel_dir, extracted.archive)
        return recorded
    log.info("%s: extracting from %s", rel_dir, archive_rel)
    extract_directory(models_dir / archive_rel, extracted.directory, target)
    files, nbytes = _dir_stats(target)
    log.info("%s: %d files, %s", rel_dir, files, human_bytes(nbytes))
    return DirectoryEntry(
        files=files, bytes=nbytes, extracted_from=archive_rel, archive_sha256=archive_sha, verified_at=utc_now()
    )


def extract_directory(archive: Path, top: str, target: Path) -> None:
    """Extract the archive's top-level `top/` into a temp dir beside `target`, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extract-", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            members = safe_members(tar, archive.name, top)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib's own safety net as well
                tar.extractall(tmp, members=members, filter="data")
            else:
                tar.extractall(tmp, members=members)  # noqa: S202 (members checked by safe_members)
        extracted = tmp / top
        if not extracted.is_dir():
            raise WorkerError(ErrorClass.MODEL_CACHE_UNUSABLE, f"{archive.name} has no top-level {top}/ directory")
        make_world_readable(extracted)  # archive members keep their modes: a directory without x is unsearchable
        _replace_dir(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def safe_members(tar: tarfile.TarFile, archive_name: str, top: str) -> list[tarfile.TarInfo]:
    """Every member, when all are plain files or directories under `top/`; otherwise refuse the archive."""
    members = tar.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        parts = [p for p in path.parts if p != "."]
        unsafe = (
            path.is_absolute()
            or ".." in parts
            or not parts
            or parts[0] != top
            or not (member.isfile() or member.isdir())
        )
        if unsafe:
            raise WorkerError(
                ErrorClass.MODEL_CACHE_UNUSABLE,
                f"{archive_name} has an unsafe or unexpected member {member.name!r}: refusing to extract it",
            )
    return members


def _replace_dir(new: Path, target: Path) -> None:
    if not target.exists():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _remove_leftover_temp_dirs(bundle_dir: Path) -> None:
    for leftover in [*bundle_dir.glob(".*.extract-*"), *bundle_dir.glob(".*.old-*")]:
        log.info("removing %s left by an interrupted run", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def make_world_readable(directory: Path) -> None:
    """Add read permission for everyone (and search, on directories, and our own write) under `directory`,
    itself included.

    Readers may run under another uid than this Job (a namespace with assigned uid ranges, a pod securityContext
    set by the user): public weights on a volume they mount read-only must not depend on sharing our uid or on
    the umask. Temp files (mkstemp: 0600) and archive members keep whatever mode they were created with, hence
    this pass. A file this process may not change (a preloaded volume of someone else's) is left as it is.
    """
    _add_mode(directory, 0o755)  # directories: ours to change, everyone's to search
    for root, dirs, files in os.walk(directory):  # top-down: each directory is made searchable before it is entered
        for name in dirs:
            _add_mode(Path(root, name), 0o755)
        for name in files:
            _add_mode(Path(root, name), 0o444)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or mode | bits == mode:
        return
    try:
        path.chmod(mode | bits)
    except OSError as e:  # not ours, or a read-only volume: readers get a clear error if it matters
        log.warning("%s: cannot make it readable for every uid: %s", path, e)


def _dir_stats(directory: Path) -> tuple[int, int]:
    files = nbytes = 0
    for root, _dirs, names in os.walk(directory):
        for name in names:
            files += 1
            nbytes += os.lstat(os.path.join(root, name)).st_size
    return files, nbytes


# ---------------------------------------------------------------------------------------------- summary


def _file_summaries(manifest: ModelManifest, bundles: list[Bundle]) -> list[FileSummary]:
    summaries = []
    for bundle in bundles:
        for file in bundle.files:
            rel = bundle.file_path(file)
            entry = manifest.files[rel]
            summaries.append(FileSummary(path=rel, bytes=entry.bytes, sha256=entry.sha256))
        for extracted in bundle.extracted:
            rel = bundle.dir_path(extracted.directory)
            summaries.append(FileSummary(path=rel, bytes=manifest.directories[rel].bytes))
    return summaries

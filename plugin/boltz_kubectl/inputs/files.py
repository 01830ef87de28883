"""The local files an input names (MSAs, templates, target structures): found, checked and given ConfigMap keys.

A path is resolved against the input's folder first and then against the current directory (`boltz predict`
resolves relative paths against the current directory, and boltz's own examples are written that way), and
wherever it is found it must lie inside the input's folder: no `../` escape, no absolute path elsewhere, no
symbolic link pointing out. That folder is the "root" below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Per file, a file up to this size goes into the prediction's ConfigMap; larger ones are uploaded to the results
# store (S3). The ConfigMap as a whole stays under CONFIGMAP_TOTAL_LIMIT (the apiserver refuses objects over about
# 1 MiB; the rest is headroom for metadata): when the small files add up to more, the largest of them go to S3 too.
CONFIGMAP_FILE_LIMIT = 256 * 1024
CONFIGMAP_TOTAL_LIMIT = 900 * 1024
# No input file may be larger: an MSA or a structure of this size is a mistake, and the worker downloads it before
# every attempt (the same bound as the campaign's target structures, api.design_spec.MAX_STRUCTURE_FILE_BYTES).
MAX_FILE_BYTES = 64 * 1024 * 1024

_KEY_CHARS = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass
class LocalFile:
    """One local file and the places in a spec (dicts) that refer to it.

    `slots` are dicts inside the spec body being built; placement fills each with `configMapKeyRef` or `s3`.
    """

    path: Path  # resolved, inside the root
    key: str  # ConfigMap key (and object name under the upload prefix): the file's own name, made key-safe
    size: int
    fields: list[str] = field(default_factory=list)  # where the input names it, for messages
    slots: list[dict[str, Any]] = field(default_factory=list)
    # the most this file may take in the ConfigMap (None: CONFIGMAP_FILE_LIMIT); a screen's library may fill it
    configmap_limit: int | None = None


class FileResolver:
    """Resolves the paths an input names; collects every problem instead of stopping at the first."""

    def __init__(self, root: Path, cwd: Path | None = None):
        self.root = root.resolve()
        self.cwd = (cwd or Path.cwd()).resolve()
        self.files: dict[Path, LocalFile] = {}
        self.problems: list[str] = []

    def attach(self, raw: Any, where: str, slot: dict[str, Any]) -> None:
        """Resolve `raw` (as written at `where`, e.g. `sequences[0].protein.msa`) and record that `slot` refers to
        it. Problems go to `self.problems`."""
        found = self._resolve(raw, where)
        if found is None:
            return
        local = self.files.get(found)
        if local is None:
            local = LocalFile(path=found, key=self._unique_key(found.name), size=found.stat().st_size)
            self.files[found] = local
            if local.size > MAX_FILE_BYTES:
                self.problems.append(
                    f"{where}: {raw} is {local.size} bytes, over the limit of {MAX_FILE_BYTES} bytes "
                    f"({MAX_FILE_BYTES // (1024 * 1024)} MiB) for one input file"
                )
        local.fields.append(where)
        local.slots.append(slot)

    def _resolve(self, raw: Any, where: str) -> Path | None:
        if not isinstance(raw, str) or not raw:
            self.problems.append(f"{where}: expected a file path, got {raw!r}")
            return None
        written = Path(raw).expanduser()
        candidates = [written] if written.is_absolute() else [self.root / written, self.cwd / written]
        existing = [c for c in candidates if c.exists()]
        if not existing:
            looked = " or ".join(str(c) for c in dict.fromkeys(candidates))
            self.problems.append(f"{where}: file {raw} not found (looked for {looked})")
            return None
        found = existing[0].resolve()
        if not found.is_relative_to(self.root):
            self.problems.append(
                f"{where}: {raw} resolves to {found}, outside the input's folder {self.root}; "
                "files must lie in that folder or below it (no ../ escapes, no links out of it)"
            )
            return None
        if not found.is_file():
            self.problems.append(f"{where}: {raw} is not a regular file")
            return None
        return found

    def _unique_key(self, name: str) -> str:
        return unique_key(name, {f.key for f in self.files.values()})


def unique_key(name: str, taken: set[str]) -> str:
    """`name` made a ConfigMap key (characters outside [-._a-zA-Z0-9] become `_`), numbered before its extension
    (`seq-2.a3m`) until it is not in `taken`."""
    stem_ext = _KEY_CHARS.sub("_", name).replace("..", "_")
    stem, dot, ext = stem_ext.rpartition(".")
    if not dot:
        stem, ext = stem_ext, ""
    key, n = stem_ext, 2
    while key in taken:
        key = f"{stem}-{n}.{ext}" if dot else f"{stem}-{n}"
        n += 1
    return key

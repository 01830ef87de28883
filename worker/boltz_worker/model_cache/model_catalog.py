"""What a model bundle consists of, where it comes from and how it lies in the cache.

The layout must satisfy boltz 2.2.1's `download_boltz2(cache)`, which downloads nothing only when ALL of
cache/mols.tar, cache/mols/, cache/boltz2_conf.ckpt and cache/boltz2_aff.ckpt exist (existence only). So mols.tar
stays after it has been extracted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Extracted:
    """A directory derived from an archive of the bundle; the archive holds the directory as its top level."""

    archive: str  # file name within the bundle, e.g. "mols.tar"
    directory: str  # directory name within the bundle, e.g. "mols"


@dataclass(frozen=True)
class HFFile:
    """A bundle file that lives in another Hugging Face repository than the bundle's own (or in a dataset repo)."""

    file: str
    repo: str
    repo_type: str = "model"  # "model" or "dataset" (dataset URLs are /datasets/<repo>/resolve/...)


@dataclass(frozen=True)
class Bundle:
    name: str  # also the directory under the models dir
    hf_repo: str
    files: tuple[str, ...]  # downloaded as they are
    extracted: tuple[Extracted, ...] = ()
    hf_revision: str = "main"
    hf_files: tuple[HFFile, ...] = ()  # per-file repository overrides

    def file_path(self, file: str) -> str:
        """Path relative to the models dir (the manifest's and the S3 source's key)."""
        return f"{self.name}/{file}"

    def dir_path(self, directory: str) -> str:
        return f"{self.name}/{directory}/"

    def hf_url(self, endpoint: str, file: str) -> str:
        source = next((f for f in self.hf_files if f.file == file), None)
        if source is not None:
            repo = f"datasets/{source.repo}" if source.repo_type == "dataset" else source.repo
            return f"{endpoint.rstrip('/')}/{repo}/resolve/{self.hf_revision}/{file}"
        return f"{endpoint.rstrip('/')}/{self.hf_repo}/resolve/{self.hf_revision}/{file}"

    def cache_problems(self, cache_dir: Path) -> list[str]:
        """What a consumer would find wrong with this bundle's cache directory (empty = usable).

        Each problem is a short phrase naming the file or directory ("missing mols.tar", "boltz2_conf.ckpt is not
        readable"). Readability is judged for this process's uid and groups, the reader's view: a cache written
        by another uid without read permission for this one is as unusable as a missing one.
        """
        try:
            if cache_dir.is_dir() and not _readable_dir(cache_dir):
                return [unreadable(str(cache_dir))]
        except PermissionError:  # a directory above it that this uid may not search
            return [unreadable(str(cache_dir))]
        problems = [f"missing {file}" for file in self.files if not (cache_dir / file).is_file()]
        problems += [f"{file} is empty" for file in self.files if _is_empty_file(cache_dir / file)]
        problems += [unreadable(file) for file in self.files if _unreadable_file(cache_dir / file)]
        for extracted in self.extracted:
            directory = cache_dir / extracted.directory
            if not directory.is_dir():
                problems.append(f"missing {extracted.directory}/")
            elif not _readable_dir(directory):
                problems.append(unreadable(f"{extracted.directory}/"))
            elif not any(directory.iterdir()):
                problems.append(f"{extracted.directory}/ is empty")
        return problems


def _is_empty_file(path: Path) -> bool:
    return path.is_file() and path.stat().st_size == 0


UNREADABLE = "is not readable"


def unreadable(name: str) -> str:
    return f"{name} {UNREADABLE}"


def _unreadable_file(path: Path) -> bool:
    return path.is_file() and not os.access(path, os.R_OK)


def _readable_dir(path: Path) -> bool:
    return os.access(path, os.R_OK | os.X_OK)


def reader_identity() -> str:
    """This process's uid, gid and supplementary groups, for messages about files it cannot read."""
    groups = sorted(set(os.getgroups()) - {os.getgid()})
    return f"uid {os.getuid()}, gid {os.getgid()}" + (f", groups {','.join(map(str, groups))}" if groups else "")


def unreadable_hint(problems: list[str]) -> str:
    """The remedy for unreadable cache files ('' when no problem is one): the readers' identity and fsGroup."""
    if not any(UNREADABLE in p for p in problems):
        return ""
    return (
        f" This worker runs as {reader_identity()}: the populate Job writes the cache world-readable and every Job "
        "of the operator runs with the same fsGroup; a volume filled some other way must be readable by that uid "
        "or group (chmod -R a+rX, or set the volume's group to the pods' securityContext.fsGroup)."
    )


BOLTZ2 = Bundle(
    name="boltz2",
    hf_repo="boltz-community/boltz-2",
    files=("boltz2_conf.ckpt", "boltz2_aff.ckpt", "mols.tar"),
    extracted=(Extracted(archive="mols.tar", directory="mols"),),
)

# boltzgen 0.3.2 (cli/boltzgen.py, ARTIFACTS): five checkpoints in the model repo boltzgen/boltzgen-1 and the
# canonical molecules as a zip in the DATASET repo boltzgen/inference-data. boltzgen reads mols.zip directly
# (data/mol.py load_molecules), so nothing is extracted. Every path is given to boltzgen on its command line.
BOLTZGEN = Bundle(
    name="boltzgen",
    hf_repo="boltzgen/boltzgen-1",
    files=(
        "boltzgen1_diverse.ckpt",  # --design_checkpoints (1st)
        "boltzgen1_adherence.ckpt",  # --design_checkpoints (2nd)
        "boltzgen1_ifold.ckpt",  # --inverse_fold_checkpoint
        "boltz2_conf_final.ckpt",  # --folding_checkpoint
        "boltz2_aff.ckpt",  # --affinity_checkpoint
        "mols.zip",  # --moldir
    ),
    hf_files=(HFFile(file="mols.zip", repo="boltzgen/inference-data", repo_type="dataset"),),
)

BUNDLES = {BOLTZ2.name: BOLTZ2, BOLTZGEN.name: BOLTZGEN}  # the names PopulateRun.bundles accepts


def bundle(name: str) -> Bundle:
    try:
        return BUNDLES[name]
    except KeyError:
        raise ValueError(f"unknown model bundle {name!r}; known: {', '.join(BUNDLES)}") from None

"""A screen's library: read (inline, a file in the run's config dir, or an S3 object), capped, its ids checked, then
each ligand checked by boltz's own rules in the python that has RDKit and boltz (chemistry.py).

Formats (LibraryFile.format): `smi` and `csv` are read by boltz_contract.library_text (shared with the kubectl
plugin, which refuses what this would refuse before creating anything); `sdf` is read by RDKit's SDMolSupplier in
the child, the id from id_property (`_Name`: the title line). Everything about the molecules is RDKit's.

A library that breaks a rule of the screen as a whole (over max_bytes or max_ligands, an id that is missing, not a
LIGAND_ID_PATTERN file name, or repeated) is InvalidInput naming the offenders; a ligand boltz would refuse is only
that ligand's failure (a row with `error`).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from boltz_contract import ErrorClass, S3Download, WorkerError
from boltz_contract.library_text import check_entries, decode_library, parse_csv, parse_smi
from boltz_contract.screen import LibraryFile, LigandRow, ScreenPrepareRun
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

ENV_BOLTZ_PYTHON = "BOLTZ_PYTHON"  # as prepare: the python that imports boltz (default: the worker's own)
CHILD_MODULE = "boltz_worker.screen_runs.chemistry"


@dataclass
class Library:
    """The library as checked: `ligands` to screen ({id, smiles, ccd}, library order), `rejected` rows (error)."""

    ligands: list[dict] = field(default_factory=list)
    rejected: list[LigandRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.ligands) + len(self.rejected)


def read_library(run: ScreenPrepareRun, config_dir: Path, work: Path) -> Library:
    """The library of `run`, every ligand checked (see the module's docstring).

    Raises WorkerError: INVALID_INPUT (no library or two, unreadable, over a cap, bad or repeated ids, an SDF RDKit
    cannot open), SOURCE_UNAVAILABLE (S3), MEMORY_LIMIT_EXCEEDED / INTERNAL (the chemistry child)."""
    if (run.library_inline is None) == (run.library_file is None):
        raise WorkerError(ErrorClass.INVALID_INPUT, "the run needs exactly one of library_inline and library_file")
    sdf = None
    if run.library_inline is not None:
        entries = [ligand.model_dump() for ligand in run.library_inline]
    else:
        spec = run.library_file
        assert spec is not None
        path = library_path(spec, config_dir, work)
        if spec.format == "sdf":
            entries, sdf = [], {"path": str(path), "id_property": spec.id_property}
        else:
            text = decode_library(path.read_bytes(), path.name)
            entries = parse_smi(text) if spec.format == "smi" else parse_csv(text, spec.id_column, spec.smiles_column)
    if sdf is None:
        check_entries(entries, run.max_ligands)
    request = {"ligands": entries, "sdf": sdf, "affinity": run.affinity, "mol_dir": str(Path(run.cache_dir) / "mols")}
    checked = run_chemistry(request, work)
    if sdf is not None:
        check_entries(checked, run.max_ligands)
    library = Library()
    for entry in checked:
        if entry.get("error"):
            library.rejected.append(LigandRow(id=entry["id"], smiles=entry.get("smiles"), ccd=entry.get("ccd"),
                                              error=entry["error"]))  # fmt: skip
        else:
            library.ligands.append({k: entry.get(k) for k in ("id", "smiles", "ccd")})
    return library


def library_path(spec: LibraryFile, config_dir: Path, work: Path) -> Path:
    """The library file on disk: the config dir's, or fetched from S3 (the results store's credentials), both held
    to spec.max_bytes. Raises WorkerError(INVALID_INPUT) for none, two, a missing or a too large file."""
    if (spec.path is None) == (spec.s3_uri is None):
        raise WorkerError(ErrorClass.INVALID_INPUT, "library_file needs exactly one of path and s3_uri")
    if spec.s3_uri is not None:
        dest = work / f"library.{spec.format}"
        fetch_downloads([S3Download(uri=spec.s3_uri, dest=str(dest), endpoint_url=spec.endpoint_url,
                                    region=spec.region, max_bytes=spec.max_bytes)])  # fmt: skip
        return dest
    assert spec.path is not None
    path = config_dir / spec.path
    if not path.is_file():
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the library file {spec.path} is not among the run's files")
    size = path.stat().st_size
    if size > spec.max_bytes:
        raise WorkerError(ErrorClass.INVALID_INPUT,
                          f"the library file {spec.path} is {size} bytes; at most {spec.max_bytes} are allowed")  # fmt: skip
    return path


def run_chemistry(request: dict, work: Path) -> list[dict]:
    """chemistry.py in the python that has RDKit and boltz; returns its ligands (each with `error` or None).

    Raises WorkerError: INVALID_INPUT (the SDF as a whole), MEMORY_LIMIT_EXCEEDED (killed by SIGKILL), INTERNAL."""
    work.mkdir(parents=True, exist_ok=True)
    request_file, answer_file = work / "chemistry-request.json", work / "chemistry-answer.json"
    request_file.write_text(json.dumps({**request, "ligands": [_plain(e) for e in request["ligands"]]}))
    answer_file.unlink(missing_ok=True)
    python = os.environ.get(ENV_BOLTZ_PYTHON) or sys.executable
    env = dict(os.environ)
    if os.environ.get(ENV_BOLTZ_PYTHON):  # another python: let it find this boltz_worker
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    argv = [python, "-m", CHILD_MODULE, str(request_file), str(answer_file)]
    log.info("checking %d ligand(s) with RDKit and boltz: %s", len(request["ligands"]), " ".join(argv))
    try:
        proc = subprocess.run(argv, env=env, stdout=sys.stderr, stderr=sys.stderr, check=False)
    except OSError as e:
        raise WorkerError(ErrorClass.INTERNAL, f"cannot start {python}: {e}") from e
    if proc.returncode == -9:
        raise WorkerError(ErrorClass.MEMORY_LIMIT_EXCEEDED, "the library check was killed (SIGKILL), most likely by "
                          "the container's memory limit: raise the prepare Job's memory")  # fmt: skip
    if not answer_file.is_file():
        raise WorkerError(ErrorClass.INTERNAL, f"the library check exited {proc.returncode} without an answer "
                          "(its traceback is in the log above)")  # fmt: skip
    answer = json.loads(answer_file.read_text())
    if not answer["ok"]:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the library: {answer.get('message')}")
    return answer["ligands"]


def _plain(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("id", "smiles", "ccd", "error")}

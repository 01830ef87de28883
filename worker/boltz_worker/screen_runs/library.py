"""A screen's library: read (inline, a file in the run's config dir, or an S3 object), capped, its ids checked, then
each ligand checked by boltz's own rules in the python that has RDKit and boltz (chemistry.py).

Formats (LibraryFile.format):
- `smi`: one ligand a line, the SMILES then the id, separated by whitespace (the SMILES file convention; columns
  after the id are ignored); blank lines and lines starting with `#` are skipped, and a first line whose first word
  is `smiles` (any case) is a header;
- `csv`: a header naming id_column and smiles_column (csv module; other columns ignored);
- `sdf`: read by RDKit's SDMolSupplier in the child, the id from id_property (`_Name`: the title line).
Splitting lines and columns is plain text handling; everything about the molecules is RDKit's.

A library that breaks a rule of the screen as a whole (over max_bytes or max_ligands, an id that is missing, not a
LIGAND_ID_PATTERN file name, or repeated) is InvalidInput naming the offenders; a ligand boltz would refuse is only
that ligand's failure (a row with `error`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from boltz_contract import ErrorClass, S3Download, WorkerError
from boltz_contract.screen import LIGAND_ID_PATTERN, LibraryFile, LigandRow, ScreenPrepareRun
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

ENV_BOLTZ_PYTHON = "BOLTZ_PYTHON"  # as prepare: the python that imports boltz (default: the worker's own)
CHILD_MODULE = "boltz_worker.screen_runs.chemistry"
SHOWN = 10  # offenders a message names
_ID = re.compile(LIGAND_ID_PATTERN)


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
            text = decode(path.read_bytes(), path.name)
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


def decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the library {name} is not UTF-8 text (line {line})") from e


def parse_smi(text: str) -> list[dict]:
    """{id, smiles, ccd: None, line} per ligand line of a .smi text. Raises WorkerError(INVALID_INPUT) for a line
    without an id."""
    entries: list[dict] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if not entries and words[0].lower() == "smiles":
            continue  # a header
        if len(words) < 2:
            raise WorkerError(ErrorClass.INVALID_INPUT,
                              f"library line {number} has a SMILES but no id (a .smi line is: SMILES id)")  # fmt: skip
        entries.append({"id": words[1], "smiles": words[0], "ccd": None, "line": number})
    return entries


def parse_csv(text: str, id_column: str, smiles_column: str) -> list[dict]:
    """{id, smiles, ccd: None, line} per row of a CSV text with a header; an empty SMILES is kept with `error`.
    Raises WorkerError(INVALID_INPUT) for a missing column or an empty id."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    missing = [c for c in (id_column, smiles_column) if c not in columns]
    if missing:
        raise WorkerError(ErrorClass.INVALID_INPUT,
                          f"the library's CSV header {columns} lacks the column(s) {missing}")  # fmt: skip
    entries: list[dict] = []
    for row in reader:
        ident, smiles = (row.get(id_column) or "").strip(), (row.get(smiles_column) or "").strip()
        if not ident:
            raise WorkerError(ErrorClass.INVALID_INPUT, f"library line {reader.line_num} has no {id_column}")
        entry = {"id": ident, "smiles": smiles or None, "ccd": None, "line": reader.line_num}
        if not smiles:
            entry["error"] = f"no SMILES in column {smiles_column}"
        entries.append(entry)
    return entries


def check_entries(entries: list[dict], max_ligands: int) -> None:
    """Raises WorkerError(INVALID_INPUT) for an empty library, more than max_ligands entries, ids that are not
    LIGAND_ID_PATTERN file names (boltz names its outputs after them) or repeated ids, naming up to SHOWN of them."""
    if not entries:
        raise WorkerError(ErrorClass.INVALID_INPUT, "the library has no ligand")
    if len(entries) > max_ligands:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the library has {len(entries)} ligands; a screen takes at "
                          f"most {max_ligands}: split it into several screens")  # fmt: skip
    bad = [e["id"] for e in entries if not _ID.match(e["id"])]
    if bad:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"{len(bad)} ligand id(s) are not file names boltz can use "
                          f"({LIGAND_ID_PATTERN}): {_named(bad)}")  # fmt: skip
    repeated = [ident for ident, n in Counter(e["id"] for e in entries).items() if n > 1]
    if repeated:
        raise WorkerError(ErrorClass.INVALID_INPUT,
                          f"{len(repeated)} ligand id(s) appear more than once: {_named(repeated)}")  # fmt: skip


def _named(ids: list[str]) -> str:
    more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return ", ".join(repr(i) for i in ids[:SHOWN]) + more


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

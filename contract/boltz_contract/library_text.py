"""The text formats of a screen's library (.smi, .csv), read the same way by the worker (screen-prepare) and by the
kubectl plugin (which refuses before creating anything what prepare would refuse):
- `smi`: one ligand a line, the SMILES then the id, separated by whitespace (the SMILES file convention; columns
  after the id are ignored); blank lines and lines starting with `#` are skipped, and a first line whose first word
  is `smiles` (any case) is a header;
- `csv`: a header naming the id and SMILES columns (csv module; other columns ignored).
Then the library as a whole: not empty, at most a cap of entries, ids that are LIGAND_ID_PATTERN file names (boltz
names its outputs after them), none repeated. Plain text handling only: everything about the molecules is RDKit's,
in the worker.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.screen import LIGAND_ID_PATTERN

SHOWN = 10  # offenders a message names
_ID = re.compile(LIGAND_ID_PATTERN)


def decode_library(data: bytes, name: str) -> str:
    """`data` as text (UTF-8, a BOM allowed). Raises WorkerError(INVALID_INPUT) naming the first line that is not."""
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

"""A screen's two inputs: the target (a boltz YAML or FASTA, the fixed part of the complex) -> BoltzScreen
`spec.target`, and the library file (.smi, .csv, .sdf) -> a LocalFile that placement puts in the ConfigMap or S3.

The target is checked as prepare checks it: with the screened ligand added as a placeholder on `ligand_chain` (and
its affinity when the screen predicts affinity), so pocket constraints naming the ligand chain are accepted, and by
the same validator and translator as `predict` (inputs/boltz.py); the placeholder is then taken out again.

The library is not parsed as chemistry (the worker reads it with RDKit): its format comes from the extension, and
a .smi or .csv is read by the worker's own text rules (boltz_contract.library_text), so an empty library, one over
the screen's cap, a CSV without the named columns, an id missing, not a file name or repeated is refused before
anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boltz_contract import WorkerError
from boltz_contract.library_text import check_entries, decode_library, parse_csv, parse_smi
from boltz_contract.screen import MAX_LIGANDS, LibraryFile, placeholder_smiles
from boltz_operator.api.screen import LibraryFormat

from ..errors import PluginError
from .boltz import Converted, convert_boltz_doc, read_boltz_input
from .files import CONFIGMAP_TOTAL_LIMIT, LocalFile, unique_key

# The largest library the worker reads (contract LibraryFile.max_bytes): larger is refused before any upload.
MAX_LIBRARY_BYTES: int = LibraryFile.model_fields["max_bytes"].default
LIBRARY_SUFFIXES = tuple(f".{f.value}" for f in LibraryFormat)


def convert_screen_target(path: Path, ligand_chain: str, affinity: bool, cwd: Path | None = None) -> Converted:
    """The boltz input at `path` as a BoltzScreen `target` body ({sequences, constraints?, templates?}, file slots
    empty) and its local files. Raises PluginError: everything convert_boltz_input refuses, a chain of the target
    that has the id `ligand_chain` (the screened ligand takes it), an affinity property for another chain."""
    doc = read_boltz_input(path)
    sequences = doc.get("sequences")
    if not isinstance(sequences, list):
        raise PluginError(f"{path}: a boltz input is a mapping with a 'sequences' list")
    problems = []
    for index, item in enumerate(sequences):
        if not isinstance(item, dict) or len(item) != 1:
            continue  # the boltz validator names it below
        kind, body = next(iter(item.items()))
        ids = (body or {}).get("id") if isinstance(body, dict) else None
        if ligand_chain in ([ids] if isinstance(ids, str) else ids if isinstance(ids, list) else []):
            what = "a ligand" if str(kind).lower() == "ligand" else f"a {str(kind).lower()} chain"
            problems.append(
                f"sequences[{index}].{kind}: the target already has {what} with chain id {ligand_chain}, the chain "
                f"each library ligand takes; remove it from the target (the library supplies the ligand) or choose "
                f"another --ligand-chain"
            )
    for index, prop in enumerate(doc.get("properties") or []):
        affinity_prop = prop.get("affinity") if isinstance(prop, dict) else None
        binder = affinity_prop.get("binder") if isinstance(affinity_prop, dict) else None
        if binder != ligand_chain or not affinity:
            problems.append(
                f"properties[{index}]: a screen adds the affinity property itself (for the library ligand's chain "
                f"{ligand_chain}) unless --no-affinity; the target file must not carry one: remove `properties` from it"
            )
    if problems:
        raise PluginError(f"{path}: cannot be the target of a BoltzScreen", problems)
    fixed = [
        item["ligand"].get("smiles")
        for item in sequences
        if isinstance(item, dict) and isinstance(item.get("ligand"), dict)
    ]
    placeholder = {"ligand": {"id": ligand_chain, "smiles": placeholder_smiles(fixed)}}  # as the operator's
    with_ligand: dict[str, Any] = {**doc, "sequences": [*sequences, placeholder]}
    with_ligand.pop("properties", None)
    if affinity:
        with_ligand["properties"] = [{"affinity": {"binder": ligand_chain}}]
    converted = convert_boltz_doc(with_ligand, path, cwd, kind="BoltzScreen target")
    body = converted.spec
    target: dict[str, Any] = {"sequences": body["sequences"][:-1]}  # the placeholder is the last entry
    for key in ("constraints", "templates"):
        if body.get(key):
            target[key] = body[key]
    return Converted(source=path, spec=target, files=converted.files)


@dataclass(frozen=True)
class Library:
    """A library file as the plugin sees it: the file to place (its slot becomes `spec.library`), its format and
    how many entries the worker will read from it."""

    file: LocalFile
    format: LibraryFormat
    entries: int


def read_library(path: Path, taken_keys: set[str], id_column: str = "id", smiles_column: str = "smiles") -> Library:
    """The library file at `path`, with a ConfigMap key not in `taken_keys` (the target's files). Raises
    PluginError: missing, an extension other than .smi/.csv/.sdf, over MAX_LIBRARY_BYTES, and whatever
    count_entries refuses."""
    if path.is_dir():
        raise PluginError(f"{path}: is a directory; a screen takes one library file (.smi, .csv or .sdf)")
    if not path.is_file():
        raise PluginError(f"{path}: no such file")
    fmt = next((f for f in LibraryFormat if path.suffix.lower() == f".{f.value}"), None)
    if fmt is None:
        raise PluginError(
            f"{path}: unknown library format {path.suffix or '(no extension)'}; a library is a .smi (SMILES id per "
            "line), .csv (with id and smiles columns) or .sdf file"
        )
    size = path.stat().st_size
    if size > MAX_LIBRARY_BYTES:
        raise PluginError(
            f"{path}: {size} bytes, over the {MAX_LIBRARY_BYTES // (1024 * 1024)} MiB a screen's library may have; "
            "split it into several screens"
        )
    entries = count_entries(path, fmt, id_column, smiles_column)
    local = LocalFile(
        path=path.resolve(),
        key=unique_key(path.name, taken_keys),
        size=size,
        fields=["LIBRARY"],
        configmap_limit=CONFIGMAP_TOTAL_LIMIT,
    )
    return Library(file=local, format=fmt, entries=entries)


def count_entries(path: Path, fmt: LibraryFormat, id_column: str = "id", smiles_column: str = "smiles") -> int:
    """Entries of a library file as the worker reads them. .smi and .csv: read and checked by the worker's own rules
    (boltz_contract.library_text: the format, then no entry, over MAX_LIGANDS, ids that are not file names, repeated
    ids); .sdf: its records counted (ended by `$$$$`, or a last one without; RDKit reads them in the worker).
    Raises PluginError with the worker's message for whatever it would refuse."""
    try:
        if fmt is LibraryFormat.SDF:  # RDKit reads the bytes: no text encoding is required of an SDF
            records, pending = 0, False
            with path.open("rb") as binary:
                for raw in binary:
                    if raw.rstrip(b"\r\n") == b"$$$$":
                        records, pending = records + 1, False
                    elif raw.strip():
                        pending = True
            entries = records + (1 if pending else 0)
            if entries == 0:
                raise PluginError(f"{path}: the library has no ligand")
            if entries > MAX_LIGANDS:
                raise PluginError(
                    f"{path}: the library has {entries} entries; a screen takes at most {MAX_LIGANDS}: split it "
                    "into several screens"
                )
            return entries
        text = decode_library(path.read_bytes(), path.name)
        if fmt is LibraryFormat.CSV:
            ligands = parse_csv(text, id_column, smiles_column)
        else:
            ligands = parse_smi(text)
        check_entries(ligands, MAX_LIGANDS)
        return len(ligands)
    except WorkerError as e:
        hint = (
            " (name the columns with --csv-id-column and --csv-smiles-column)"
            if "lacks the column" in e.message
            else ""
        )
        raise PluginError(f"{path}: {e.message}{hint}") from e
    except OSError as e:
        raise PluginError(f"{path}: cannot read it: {e}") from e

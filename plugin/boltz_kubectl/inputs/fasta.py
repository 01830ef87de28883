"""boltz's FASTA input -> the equivalent boltz YAML document, as boltz 2.2.1's `parse_fasta` builds it.

    >CHAIN_ID|ENTITY_TYPE|MSA_PATH      ENTITY_TYPE: protein, dna, rna, ccd or smiles (any case); MSA_PATH: proteins only
    SEQUENCE (may span lines)

Like Biopython's reader (which boltz uses) the record id is the header up to the first whitespace, and the
sequence is the record's lines joined without whitespace.
"""

from __future__ import annotations

from typing import Any

ENTITY_TYPES = ("protein", "dna", "rna", "ccd", "smiles")


def fasta_to_boltz_doc(text: str) -> tuple[dict[str, Any], list[str]]:
    """The boltz YAML document (`{"version": 1, "sequences": [...]}`) for a FASTA text, and the problems found
    (each naming the record); the document is only meaningful when there are none."""
    problems: list[str] = []
    records: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(">"):
            records.append((line[1:].strip(), []))
        elif records:
            records[-1][1].append("".join(line.split()))
        elif line.strip():
            problems.append(f"line {number}: text before the first '>' header")
    if not records and not problems:
        problems.append("no FASTA records (a record starts with a '>CHAIN_ID|ENTITY_TYPE' header)")
    sequences = []
    for index, (title, lines) in enumerate(records, start=1):
        item = _record(index, title, "".join(lines), problems)
        if item is not None:
            sequences.append(item)
    return {"version": 1, "sequences": sequences}, problems


def _record(index: int, title: str, sequence: str, problems: list[str]) -> dict[str, Any] | None:
    record_id = title.split(None, 1)[0] if title.strip() else ""
    where = f"record {index} (>{record_id})"
    header = record_id.split("|")
    if len(header) < 2 or not header[0] or not header[1]:
        problems.append(f"{where}: the header must be >CHAIN_ID|ENTITY_TYPE[|MSA_PATH]")
        return None
    if len(header) > 3:
        # boltz reads an MSA only from a three-field header and would silently ignore it here
        problems.append(f"{where}: more than three '|' fields; the header is >CHAIN_ID|ENTITY_TYPE[|MSA_PATH]")
        return None
    chain, kind = header[0], header[1].lower()
    msa = header[2] if len(header) == 3 and header[2] else None
    if kind not in ENTITY_TYPES:
        problems.append(f"{where}: unknown entity type {header[1]!r}; use one of {', '.join(ENTITY_TYPES)}")
        return None
    if msa is not None and kind != "protein":
        problems.append(f"{where}: an MSA path is only allowed for proteins")
        return None
    if not sequence:
        problems.append(f"{where}: empty sequence")
        return None
    if kind == "protein":
        body: dict[str, Any] = {"id": chain, "sequence": sequence}
        if msa is not None:
            body["msa"] = msa
        return {"protein": body}
    if kind in ("dna", "rna"):
        return {kind: {"id": chain, "sequence": sequence}}
    return {"ligand": {"id": chain, kind: sequence}}

"""Which protein entities of an input have which MSA, as boltz groups them, and the input staged with the MSAs.

boltz 2.2.1 (boltz/data/parse/schema.py `parse_boltz_schema`) groups the `sequences` items by (type, sequence):
one entity per group, in the order each group first appears; every chain of an entity uses the MSA of its first
item; `msa` absent, null or "" means "computed by the server" (boltz/main.py `process_input` then asks
`compute_msa` for those entities, in entity order); "empty" means single-sequence mode.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from boltz_contract import ErrorClass, PrepareRun, WorkerError
from boltz_contract.boltz_input import MSA_EMPTY
from boltz_contract.msa import msa_key


@dataclass
class ProteinEntity:
    """A protein entity: its chain ids (every item's), sequence, modifications and MSA as the input gives it."""

    chains: list[str]
    sequence: str
    msa: str | None  # None: the server's; "empty"; else a file path
    modifications: list[dict] = field(default_factory=list)


def protein_entities(doc: dict) -> list[ProteinEntity]:
    """The protein entities of a (validated) Boltz input, in boltz's entity order."""
    entities: dict[str, ProteinEntity] = {}
    for item in doc.get("sequences", []):
        kind, body = next(iter(item.items()))
        if str(kind).lower() != "protein":
            continue
        ids = [body["id"]] if isinstance(body["id"], str) else list(body["id"])
        sequence = str(body["sequence"])
        msa = body.get("msa")
        msa = None if msa is None or msa == "" else str(msa)
        if sequence in entities:
            entities[sequence].chains += ids
        else:
            entities[sequence] = ProteinEntity(ids, sequence, msa, list(body.get("modifications") or []))
    return list(entities.values())


def requested_entities(doc: dict, run: PrepareRun) -> list[ProteinEntity]:
    """The entities the MSA server is asked for, checked against run.msa_request (the operator's view of the same
    input): the same sequences in the same order, the first chain of each, and the key of those sequences.

    Raises WorkerError(INTERNAL) when they disagree (the operator rendered one thing and asked for another) and
    WorkerError(INVALID_INPUT) when chains need the server but the run has no request (the server is off)."""
    wanted = [e for e in protein_entities(doc) if e.msa is None]
    request = run.msa_request
    if request is None:
        if wanted:
            chains = ", ".join(c for e in wanted for c in e.chains)
            raise WorkerError(
                ErrorClass.INVALID_INPUT,
                f"protein chains {chains} have no msa and the MSA server is off: give an msa (or 'empty') or turn "
                "the MSA server on",
            )
        return []
    found = ([e.sequence for e in wanted], [e.chains[0] for e in wanted])
    repeated = [c for i, (c, s) in enumerate(zip(request.chains, request.sequences)) if s in request.sequences[:i]]
    if repeated:
        raise WorkerError(
            ErrorClass.INTERNAL,
            f"the run's msa_request asks again for the sequence of chains {', '.join(repeated)}: boltz makes the "
            "proteins of one sequence one entity with one MSA (boltz/data/parse/schema.py parse_boltz_schema), so "
            "the request must name each sequence once, by its first chain, and the GPU input must give every item "
            "of that sequence the same MSA file",
        )
    if found != (list(request.sequences), list(request.chains)):
        raise WorkerError(
            ErrorClass.INTERNAL,
            f"the run's msa_request (chains {request.chains}) does not match the input's protein entities without "
            f"an MSA (chains {found[1]}, sequences of lengths {[len(s) for s in found[0]]})",
        )
    options = run.options
    key = msa_key(options.msa_server_url, options.msa_pairing_strategy, found[0])
    if key != request.key:
        raise WorkerError(ErrorClass.INTERNAL, f"the run's msa_request key {request.key} is not the key {key} of its "
                          "sequences, server and pairing strategy")  # fmt: skip
    if run.msa_store is None:
        raise WorkerError(ErrorClass.INTERNAL, "the run has an msa_request but no msa_store")
    return wanted


def given_msas(doc: dict) -> list[ProteinEntity]:
    """The entities whose MSA is a file."""
    return [e for e in protein_entities(doc) if e.msa not in (None, MSA_EMPTY)]


def with_msas(doc: dict, msas: dict[str, Path], base: Path) -> dict:
    """A copy of `doc` whose protein items of sequence s get `msa: msas[s]`, and whose relative file paths (MSAs,
    templates) are made absolute against `base` (boltz runs elsewhere)."""
    doc = copy.deepcopy(doc)
    for item in doc.get("sequences", []):
        body = item.get("protein")
        if not isinstance(body, dict):
            continue
        if str(body["sequence"]) in msas:
            body["msa"] = str(msas[str(body["sequence"])])
        elif isinstance(body.get("msa"), str) and body["msa"] not in ("", MSA_EMPTY):
            body["msa"] = str(base / body["msa"])  # an absolute path stays as it is
    for template in doc.get("templates") or []:
        for key in ("cif", "pdb"):
            if isinstance(template.get(key), str):
                template[key] = str(base / template[key])
    return doc

"""The target's Boltz YAML and each screened ligand's input made from it.

The operator renders the target with the screened ligand as a placeholder entry `{ligand: {id: <ligand_chain>,
smiles: <a stand-in>}}` (contract placeholder_smiles: one no fixed ligand of the target has) and, for an affinity screen, `properties: [{affinity: {binder: <ligand_chain>}}]`. A ligand's input is
that document with the placeholder's smiles (or ccd) replaced by the ligand's: the rest (chains, MSA files,
constraints, templates) is the same for every ligand. The MSA files are shared, but boltz 2.2.1 parses them again for
each input (boltz/main.py process_input dumps processed/msa/<record>_<i>.npz per record), on the shard's CPUs
(--preprocessing-threads), before the model loads.
"""

from __future__ import annotations

import copy

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.screen import placeholder_smiles


def placeholder(doc: dict, ligand_chain: str) -> dict | None:
    """The placeholder ligand's body in `doc` (the item whose id is ligand_chain), None when there is none."""
    for item in doc.get("sequences") or []:
        if isinstance(item, dict) and isinstance(item.get("ligand"), dict):
            ids = item["ligand"].get("id")
            if ids == ligand_chain or ids == [ligand_chain]:
                return item["ligand"]
    return None


def with_placeholder(doc: dict, ligand_chain: str, affinity: bool) -> dict:
    """A copy of `doc` that has the placeholder ligand and, when affinity, the affinity property for it.

    Raises WorkerError(INTERNAL) when the chain id is taken by something else, or the document asks for affinity of
    another binder (the operator rendered one thing and asked for another)."""
    doc = copy.deepcopy(doc)
    if placeholder(doc, ligand_chain) is None:
        for item in doc.get("sequences") or []:
            body = next(iter(item.values())) if isinstance(item, dict) and item else None
            ids = body.get("id") if isinstance(body, dict) else None
            if ids == ligand_chain or (isinstance(ids, list) and ligand_chain in ids):
                raise WorkerError(ErrorClass.INTERNAL, f"the target's chain {ligand_chain} (the screened ligand's) is "
                                  "not a single ligand entry")  # fmt: skip
        fixed = [i["ligand"].get("smiles") for i in doc.get("sequences") or [] if isinstance(i.get("ligand"), dict)]
        doc.setdefault("sequences", []).append({"ligand": {"id": ligand_chain, "smiles": placeholder_smiles(fixed)}})
    binders = [
        p["affinity"].get("binder") for p in doc.get("properties") or [] if isinstance(p, dict) and "affinity" in p
    ]
    if any(b != ligand_chain for b in binders):
        raise WorkerError(ErrorClass.INTERNAL, f"the target asks for the affinity of {binders}, not of the screened "
                          f"ligand {ligand_chain}")  # fmt: skip
    if affinity and not binders:
        doc.setdefault("properties", []).append({"affinity": {"binder": ligand_chain}})
    if not affinity and binders:
        doc["properties"] = [p for p in doc["properties"] if not (isinstance(p, dict) and "affinity" in p)]
        if not doc["properties"]:
            del doc["properties"]
    return doc


def ligand_input(target: dict, ligand_chain: str, ligand: dict) -> dict:
    """The input of one screened ligand ({id, smiles, ccd}): `target` (with_placeholder's) with the placeholder's
    molecule replaced."""
    doc = copy.deepcopy(target)
    body = placeholder(doc, ligand_chain)
    assert body is not None, "with_placeholder guarantees the placeholder"
    body.pop("smiles", None)
    body.pop("ccd", None)
    if ligand.get("smiles") is not None:
        body["smiles"] = ligand["smiles"]
    else:
        body["ccd"] = ligand["ccd"]
    return doc


def ligand_chain_index(doc: dict, ligand_chain: str) -> int | None:
    """The screened ligand's chain index in boltz's structure when the target has other non-polymer chains (then the
    ligand's own ipTM is read from pair_chains_iptm), else None (boltz's ligand_iptm is the screened ligand's).

    boltz 2.2.1 (schema.py parse_boltz_schema) groups items into entities by (type, sequence/smiles/ccd), in the order
    each first appears, and numbers the chains entity by entity; the placeholder's molecule is unique to it."""
    entities: dict[tuple[str, ...], list[str]] = {}
    others = 0
    for item in doc.get("sequences") or []:
        kind, body = next(iter(item.items()))
        ids = [body["id"]] if isinstance(body["id"], str) else list(body["id"])
        key: tuple[str, ...] = (str(kind).lower(), body.get("sequence") or body.get("smiles") or str(body.get("ccd")))
        if ligand_chain in ids:
            key = ("screened",)
        elif str(kind).lower() == "ligand":
            others += len(ids)
        entities.setdefault(key, []).extend(ids)
    if not others:
        return None
    chains = [c for ids in entities.values() for c in ids]
    return chains.index(ligand_chain)

"""boltz's exceptions made actionable: which field, chain, residue or atom, with boltz's own text kept at the end.

boltz 2.2.1's parser (boltz/data/parse/schema.py `parse_boltz_schema`) raises what it happens to hit: an RDKit
`ArgumentError` (`AddHs(NoneType)`) for a SMILES RDKit cannot read or sanitize, a bare KeyError `(chain, residue - 1,
atom)` for a bond to an atom a residue lacks (`atom_idx_map[...]` in its constraints loop), a ValueError
"CCD component X not found!" (boltz/data/mol.py `load_molecules`) for a code missing from the cache's molecules.
Runs in the process that imports boltz (standard library, boltz and RDKit only).
"""

from __future__ import annotations

import copy
import re
import traceback
from pathlib import Path

MESSAGE_LIMIT = 1500  # characters; the worker cuts the final message to fit the termination message


def boltz_text(e: BaseException) -> str:
    """`Type: text` of an exception, with where boltz raised it for a bare assert or KeyError (their text alone
    says little): `KeyError: ('L', 0, 'XX') [boltz/data/parse/schema.py:1525]`."""
    text = f"{type(e).__name__}: {e}".strip().rstrip(":")
    frames = traceback.extract_tb(e.__traceback__)
    if frames and (isinstance(e, AssertionError | KeyError) or not str(e)):
        frame = frames[-1]
        where = frame.filename.split("site-packages/")[-1]
        text += f" [{where}:{frame.lineno}{' ' + frame.line if frame.line and isinstance(e, AssertionError) else ''}]"
    return " ".join(text.split())  # one line


def explain_parse_error(e: BaseException, doc: dict, reparse) -> str:
    """A message for an exception of boltz's `parse_yaml` on `doc`. `reparse(doc) -> Target` parses another
    document (used to list the atoms a residue has)."""
    text = boltz_text(e)
    hint = (_smiles_problem(doc) or _missing_atom(e, doc, reparse) or _missing_ccd(e) or _affinity_size(e, doc)
            or _template_chain(e, doc))  # fmt: skip
    if hint:
        return f"{hint} (boltz: {text})"
    return f"boltz could not parse the input: {text}"


def _smiles_problem(doc: dict) -> str | None:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # the reasons are taken from the exceptions below, not the log
    for chain, body in _ligands(doc):
        smiles = body.get("smiles")
        if not isinstance(smiles, str):
            continue
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return f"ligand {chain}: RDKit cannot parse the SMILES {smiles!r} (check its syntax and element symbols)"
        try:
            Chem.SanitizeMol(mol)
        except Exception as e:  # noqa: BLE001 (RDKit raises its own MolSanitizeException subclasses)
            return f"ligand {chain}: RDKit cannot sanitize the SMILES {smiles!r}: {e}"
    return None


def _missing_atom(e: BaseException, doc: dict, reparse) -> str | None:
    key = e.args[0] if isinstance(e, KeyError) and e.args else None
    if not (isinstance(key, tuple) and len(key) == 3):
        return None
    chain, residue0, atom = key
    where = _constraint_of(doc, chain, residue0 + 1, atom)
    try:
        target = reparse({k: v for k, v in copy.deepcopy(doc).items() if k != "constraints"})
    except Exception:  # noqa: BLE001 (the atoms cannot be listed: say what is known)
        return f"{where}: chain {chain} residue {residue0 + 1} has no atom named {atom!r}"
    names = _atom_names(target, chain, residue0)
    if names is None:
        return f"{where}: chain {chain} has no residue {residue0 + 1}"
    residue_name, atoms = names
    return (f"{where}: chain {chain} residue {residue0 + 1} ({residue_name}) has no atom named {atom!r}; boltz "
            f"knows its atoms as {', '.join(atoms)}")  # fmt: skip


def _constraint_of(doc: dict, chain: str, residue: int, atom: str) -> str:
    for index, constraint in enumerate(doc.get("constraints") or []):
        bond = constraint.get("bond") if isinstance(constraint, dict) else None
        if bond and [chain, residue, atom] in ([*bond.get("atom1", [])], [*bond.get("atom2", [])]):
            return f"constraints[{index}] (bond)"
    return "a constraint"


def _atom_names(target, chain: str, residue0: int) -> tuple[str, list[str]] | None:
    structure = target.structure
    for row in structure.chains:
        if str(row["name"]) != chain:
            continue
        if residue0 < 0 or residue0 >= int(row["res_num"]):
            return None
        residue = structure.residues[int(row["res_idx"]) + residue0]
        start, count = int(residue["atom_idx"]), int(residue["atom_num"])
        return str(residue["name"]), [str(a["name"]) for a in structure.atoms[start : start + count]]
    return None


def _missing_ccd(e: BaseException) -> str | None:
    text = str(e)
    if isinstance(e, ValueError) and text.startswith("CCD component ") and text.endswith(" not found!"):
        code = text[len("CCD component ") : -len(" not found!")]
        return (f"CCD code {code} is not among the model cache's molecules (mols/): check the code, or give the "
                "ligand as a SMILES")  # fmt: skip
    return None


def _affinity_size(e: BaseException, doc: dict) -> str | None:
    if "ligand for affinity is too large" not in str(e):
        return None
    binder = next((p["affinity"].get("binder") for p in doc.get("properties") or [] if "affinity" in p), "?")
    return (
        f"affinity ligand {binder} has more than 128 atoms as boltz counts them (every atom of a CCD ligand, "
        "hydrogens included; the heavy atoms of a SMILES): give a smaller binder or drop affinity"
    )


TEMPLATE_CHAIN = re.compile(r"^(Template chain|Chain) (\S+) assigned for template ?(.*) is not one of the protein")


def _template_chain(e: BaseException, doc: dict) -> str | None:
    """boltz's message for a template's chain_id / template_id that does not map (schema.py, templates loop)."""
    match = TEMPLATE_CHAIN.match(str(e))
    if not match:
        return None
    kind, chain, stem = match.groups()
    where = "a template"
    for index, template in enumerate(doc.get("templates") or []):
        path = template.get("cif") or template.get("pdb") if isinstance(template, dict) else None
        if isinstance(path, str) and Path(path).stem == stem:
            where = f"templates[{index}] ({Path(path).name})"
    if kind == "Chain":
        return f"{where}: chain_id {chain} is not a protein chain of the input"
    return (f"{where}: template_id {chain} is not a protein chain of the template file (boltz names mmCIF chains "
            "by their label_asym_id, PDB chains A1, A2, ...): check template_id")  # fmt: skip


def _ligands(doc: dict):
    for item in doc.get("sequences") or []:
        kind, body = next(iter(item.items()))
        if str(kind).lower() == "ligand" and isinstance(body, dict):
            ids = body.get("id")
            yield ("/".join(ids) if isinstance(ids, list) else str(ids)), body


def msa_read_error(e: BaseException, chains: list[str], path: Path) -> str:
    """A message for boltz failing to read an MSA file (parse_a3m / parse_csv)."""
    who = f"chain{'s' if len(chains) > 1 else ''} {', '.join(chains)}"
    return f"{who}: boltz could not read the MSA file {path}: {boltz_text(e)}"

"""What screen-prepare runs where RDKit and boltz are importable: `python -m boltz_worker.screen_runs.chemistry
REQUEST ANSWER` (the worker runs it as a child with $BOLTZ_PYTHON, default its own python, as prepare does).

REQUEST is JSON: {ligands: [{id, smiles, ccd}], sdf: null | {path, id_property}, affinity, mol_dir}. ANSWER gets
{ok, message?, ligands: [{id, smiles, ccd, error}]}: the SDF's molecules (read by RDKit's SDMolSupplier, each written
as RDKit's SMILES) after the given ligands, each with `error` (why boltz would refuse it) or null.

The checks are the steps of boltz 2.2.1's parse_boltz_schema for a SMILES ligand (boltz/data/parse/schema.py), short
of the conformer (ETKDG costs tens of ms a molecule; a ligand it fails for is recorded by its shard):
1. RDKit reads and sanitizes the SMILES (boltz: MolFromSmiles, AddHs; else an RDKit ArgumentError);
2. with affinity, boltz's own `standardize` (the ChEMBL pipeline, largest fragment), whose SMILES boltz goes on with;
3. boltz names each atom element + canonical rank (hydrogens included) and refuses a name longer than 4 characters;
4. with affinity, more than 128 heavy atoms is refused ("The ligand for affinity is too large").
A CCD ligand must be in the cache's mols/ (boltz/data/mol.py load_molecules reads mols/<code>.pkl); with affinity,
more than 128 atoms (hydrogens included, as boltz counts a CCD molecule) is refused.
Standard library, RDKit and boltz only (this python may have no pydantic).
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
from pathlib import Path

AFFINITY_MAX_ATOMS = 128  # boltz/data/parse/schema.py parse_boltz_schema
MAX_ATOM_NAME = 4  # boltz's atom names: element + canonical rank, at most 4 characters (a PDB-style name)


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    answer: dict = {"ok": False, "ligands": []}
    with contextlib.redirect_stdout(sys.stderr):
        try:
            answer["ligands"] = check_request(request)
            answer["ok"] = True
        except SdfError as e:
            answer["message"] = str(e)
    Path(argv[1]).write_text(json.dumps(answer))
    return 0


class SdfError(Exception):
    """The SDF file as a whole cannot be read."""


def check_request(request: dict) -> list[dict]:
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")  # reasons come from the exceptions; RDKit's log would repeat them at length
    ligands = [dict(ligand) for ligand in request.get("ligands") or []]
    if request.get("sdf"):
        ligands += read_sdf(Path(request["sdf"]["path"]), request["sdf"]["id_property"])
    mol_dir = Path(request["mol_dir"]) if request.get("mol_dir") else None
    for ligand in ligands:
        if ligand.get("error"):
            continue
        if ligand.get("smiles") is not None:
            ligand["error"] = smiles_problem(ligand["smiles"], request.get("affinity", False))
        elif ligand.get("ccd") is not None:
            ligand["error"] = ccd_problem(ligand["ccd"], mol_dir, request.get("affinity", False))
        else:
            ligand["error"] = "neither a SMILES nor a CCD code"
    return ligands


def read_sdf(path: Path, id_property: str) -> list[dict]:
    """The SDF's records in file order as {id, smiles, ccd: None, error}: a record RDKit cannot read or sanitize is
    kept with the reason (id `record-<n>`, 1-based, when RDKit cannot read the record at all)."""
    from rdkit import Chem

    try:
        supplier = Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)
    except OSError as e:
        raise SdfError(f"RDKit cannot open the SDF file: {e}") from e
    out = []
    for index in range(len(supplier)):
        mol = supplier[index]
        if mol is None:
            out.append({"id": f"record-{index + 1}", "smiles": None, "ccd": None,
                        "error": f"RDKit cannot read SDF record {index + 1}"})  # fmt: skip
            continue
        ident = mol.GetProp(id_property).strip() if mol.HasProp(id_property) else ""
        if not ident:
            raise SdfError(f"SDF record {index + 1} has no {id_property!r} (the property holding the ligand's id)")
        try:
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)
            smiles, error = Chem.MolToSmiles(mol), None
        except Exception as e:  # noqa: BLE001 (RDKit raises its own MolSanitizeException subclasses)
            smiles, error = None, f"RDKit cannot sanitize SDF record {index + 1}: {_one_line(e)}"
        out.append({"id": ident, "smiles": smiles, "ccd": None, "error": error})
    return out


def smiles_problem(smiles: str, affinity: bool) -> str | None:
    """Why boltz would refuse the SMILES ligand (see the module's docstring), or None."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return f"RDKit cannot parse the SMILES {smiles!r} (check its syntax and element symbols)"
    try:
        Chem.SanitizeMol(mol)
    except Exception as e:  # noqa: BLE001
        return f"RDKit cannot sanitize the SMILES {smiles!r}: {_one_line(e)}"
    if affinity:
        from boltz.data.parse.schema import standardize

        try:
            smiles = standardize(smiles)
        except Exception as e:  # noqa: BLE001 (ValueError "Molecule is excluded", RDKit's RuntimeError...)
            return f"boltz's standardization (affinity) refuses the SMILES {smiles!r}: {_one_line(e)}"
        mol = Chem.MolFromSmiles(smiles)
    with_hydrogens = Chem.AddHs(mol)
    ranks = Chem.CanonicalRankAtoms(with_hydrogens)
    for atom, rank in zip(with_hydrogens.GetAtoms(), ranks):
        name = atom.GetSymbol().upper() + str(rank + 1)
        if len(name) > MAX_ATOM_NAME:
            return (f"boltz names this ligand's atoms element + rank and refuses {name} (more than {MAX_ATOM_NAME} "
                    "characters): too many atoms, hydrogens included")  # fmt: skip
    heavy = mol.GetNumHeavyAtoms()
    if affinity and heavy > AFFINITY_MAX_ATOMS:
        return (f"{heavy} heavy atoms: boltz's affinity module takes at most {AFFINITY_MAX_ATOMS} (\"The ligand for "
                "affinity is too large\")")  # fmt: skip
    return None


def ccd_problem(code: str, mol_dir: Path | None, affinity: bool) -> str | None:
    if mol_dir is None:
        return None
    path = mol_dir / f"{code}.pkl"
    if not path.is_file():
        return f"CCD code {code} is not among the model cache's molecules (mols/): check the code, or give a SMILES"
    if affinity:
        with path.open("rb") as f:
            atoms = pickle.load(f).GetNumAtoms()  # noqa: S301 (the model cache's own molecules)
        if atoms > AFFINITY_MAX_ATOMS:
            return (f"CCD {code} has {atoms} atoms (hydrogens included, as boltz counts a CCD ligand): boltz's "
                    f"affinity module takes at most {AFFINITY_MAX_ATOMS}")  # fmt: skip
    return None


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

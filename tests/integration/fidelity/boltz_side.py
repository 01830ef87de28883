"""The half of the fidelity tests that runs INSIDE the boltz venv (hack/boltz-venv.sh), never in the project's.

The tests (run from the project venv) call this script as a subprocess with the boltz venv's python; it answers
with one JSON document on stdout (boltz's own prints go to stderr). Subcommands:

  mols OUT_DIR CODE...        canonical residue molecules `<CODE>.pkl`, built offline from biotite's bundled CCD
  template FILES.json         protein mmCIF/PDB files to use as Boltz templates (meaningless geometry)
  parse MOL_DIR WORK_DIR INPUT...  each YAML or FASTA input through boltz's own parser and input processing
  cli CASES.json              `boltz predict` command lines parsed (not run) by boltz's own click command
  checkpoints OUT_DIR         random-initialised, small Boltz2 structure and affinity checkpoints

Only the standard library, boltz and what boltz depends on (rdkit, torch, gemmi) plus biotite are imported.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import sys
import traceback
from pathlib import Path

MOLS_FORMAT = 1  # bump when the molecules written by `mols` change: the tests key their cache on it


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # boltz and rdkit print: keep stdout for our answer
        result = COMMANDS[command](args)
    json.dump(result, real_stdout)
    real_stdout.write("\n")
    return 0


# ---------------------------------------------------------------------------------------------- molecules


def cmd_mols(args: list[str]) -> dict:
    out, codes = Path(args[0]), args[1:]
    out.mkdir(parents=True, exist_ok=True)
    from rdkit import Chem

    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    written, kept = [], []
    for code in codes:
        path = out / f"{code}.pkl"
        if path.exists():
            kept.append(code)
            continue
        mol = ccd_mol(code)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(pickle.dumps(mol))
        tmp.replace(path)  # atomic: a concurrent reader sees a whole molecule or none
        written.append(code)
    return {"written": written, "kept": kept}


def ccd_mol(code: str):
    """An RDKit molecule of CCD component `code` shaped like the ones in boltz's mols.tar.

    boltz's own builder (scripts/process/ccd.py) reads the CCD with pdbeccdutils: every atom, hydrogens included,
    with the properties `name`, `alt_name` and `leaving_atom`; an `Ideal` conformer from the CCD's ideal
    coordinates and, where RDKit can embed it, a `Computed` ETKDGv3 conformer (boltz prefers `Computed`).
    """
    import numpy as np
    from biotite.structure import info
    from rdkit import Chem
    from rdkit.Chem import AllChem
    from rdkit.Geometry import Point3D

    atoms = info.get_from_ccd("chem_comp_atom", code)
    if atoms is None:
        raise KeyError(f"{code} is not in biotite's CCD")
    column = _ccd_columns(atoms)
    names = [str(n) for n in column("atom_id")]
    alt_names = [str(n) for n in column("alt_atom_id")]
    elements = [str(e) for e in column("type_symbol")]
    charges = [int(c) for c in column("charge")]
    leaving = [str(f) == "Y" for f in column("pdbx_leaving_atom_flag")]

    table = Chem.GetPeriodicTable()
    mol = Chem.RWMol()
    for name, alt, element, charge, leave in zip(names, alt_names, elements, charges, leaving):
        symbol = "H" if element.upper() == "D" else element.capitalize()
        atom = Chem.Atom(table.GetAtomicNumber(symbol))
        atom.SetFormalCharge(charge)
        atom.SetProp("name", name)
        atom.SetProp("alt_name", alt)
        atom.SetBoolProp("leaving_atom", leave)
        mol.AddAtom(atom)

    bonds = info.get_from_ccd("chem_comp_bond", code)
    if bonds is not None:
        bond_column = _ccd_columns(bonds)
        index = {name: i for i, name in enumerate(names)}
        orders = {
            "SING": Chem.BondType.SINGLE, "DOUB": Chem.BondType.DOUBLE, "TRIP": Chem.BondType.TRIPLE,
            "QUAD": Chem.BondType.QUADRUPLE, "AROM": Chem.BondType.AROMATIC,
        }  # fmt: skip
        for a1, a2, order in zip(bond_column("atom_id_1"), bond_column("atom_id_2"), bond_column("value_order")):
            mol.AddBond(index[str(a1)], index[str(a2)], orders.get(str(order).upper(), Chem.BondType.SINGLE))

    mol = mol.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001  (unusual valences in a few CCD entries: keep what RDKit can)
        mol.UpdatePropertyCache(strict=False)
        Chem.SanitizeMol(
            mol, Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES, catchErrors=True
        )

    for conformer_name, prefix in (("Ideal", "pdbx_model_Cartn_{}_ideal"), ("Model", "model_Cartn_{}")):
        xyz = _coordinates(atoms, prefix)
        if xyz is None:
            continue
        conformer = Chem.Conformer(mol.GetNumAtoms())
        for i, (x, y, z) in enumerate(np.asarray(xyz, dtype=float)):
            conformer.SetAtomPosition(i, Point3D(x, y, z))
        conformer.SetProp("name", conformer_name)
        conformer_id = mol.AddConformer(conformer, assignId=True)
        if conformer_name == "Ideal":
            Chem.AssignStereochemistryFrom3D(mol, confId=conformer_id)
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True, flagPossibleStereoCenters=True)

    if mol.GetNumAtoms() > 1:
        options = AllChem.ETKDGv3()
        options.clearConfs = False
        options.randomSeed = 20250101  # the same molecules on every machine
        try:
            conformer_id = AllChem.EmbedMolecule(mol, options)
            if conformer_id != -1:
                AllChem.UFFOptimizeMolecule(mol, confId=conformer_id, maxIters=1000)
                mol.GetConformer(conformer_id).SetProp("name", "Computed")
                mol.GetConformer(conformer_id).SetProp("coord_generation", "ETKDGv3")
        except (RuntimeError, ValueError):
            pass  # the Ideal conformer remains, as in boltz's builder
    mol.SetProp("PDB_NAME", code)
    return mol


def _ccd_columns(category):
    def column(name: str):
        return category[name].as_array()

    return column


def _coordinates(category, prefix: str):
    import numpy as np

    axes = []
    for axis in "xyz":
        column = category[prefix.format(axis)]
        if column.mask is not None and np.any(column.mask.array != 0):
            return None  # some coordinates missing in the CCD
        axes.append(column.as_array(float))
    return np.stack(axes, axis=1)


# ---------------------------------------------------------------------------------------------- templates


def cmd_template(args: list[str]) -> dict:
    """Template files: args[0] is a JSON file {path: {chain id: protein sequence}}."""
    files = json.loads(Path(args[0]).read_text())
    return {path: write_template(Path(path), chains) for path, chains in files.items()}


def write_template(out: Path, chains: dict[str, str]) -> dict:
    """An mmCIF (or PDB, by OUT's suffix) with one protein chain per entry, heavy atoms from the CCD's ideal
    residues laid along a line: the geometry means nothing, the file is well formed."""
    import gemmi
    import numpy as np
    from biotite.structure import info
    from boltz.data import const

    out.parent.mkdir(parents=True, exist_ok=True)
    structure = gemmi.Structure()
    structure.name = out.stem
    model = gemmi.Model("1")
    for chain_name, sequence in chains.items():
        chain = gemmi.Chain(chain_name)
        for i, letter in enumerate(sequence):
            code = const.prot_letter_to_token[letter]
            ideal = info.residue(code)
            residue = gemmi.Residue()
            residue.name = code
            residue.seqid = gemmi.SeqId(i + 1, " ")
            residue.entity_type = gemmi.EntityType.Polymer
            residue.subchain = chain_name  # label_asym_id, the chain name boltz matches template_id against
            last = i == len(sequence) - 1
            for atom_name, element, xyz in zip(ideal.atom_name, ideal.element, ideal.coord):
                if element == "H" or (atom_name == "OXT" and not last):
                    continue
                atom = gemmi.Atom()
                atom.name = str(atom_name)
                atom.element = gemmi.Element(str(element))
                atom.pos = gemmi.Position(*(np.asarray(xyz, dtype=float) + (3.8 * i, 0.0, 0.0)))
                atom.occ = 1.0
                atom.b_iso = 20.0
                residue.add_atom(atom)
            chain.add_residue(residue)
        model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    residue_names = {chain.name: [r.name for r in chain] for chain in model}
    for entity in structure.entities:
        entity.polymer_type = gemmi.PolymerType.PeptideL
        entity.full_sequence = residue_names[entity.subchains[0]]  # _entity_poly_seq / SEQRES: boltz reads it
    structure.assign_label_seq_id()
    if out.suffix == ".pdb":
        structure.write_pdb(str(out))
    else:
        structure.make_mmcif_document().write_file(str(out))
    return {"path": str(out)}


# ---------------------------------------------------------------------------------------------- parsing


def cmd_parse(args: list[str]) -> dict:
    """Every YAML through `parse_yaml` (the schema parser) and then `process_input` (MSAs, templates, dumps),
    exactly as `boltz predict` does before it loads a model (MSA server off)."""
    mol_dir, work = Path(args[0]), Path(args[1])
    # boltz.main first, as under `boltz predict`: the parser relies on modules it happens to import (with rdkit
    # 2026.09, `AllChem.Descriptors` in the affinity path exists only once rdkit.Chem.Descriptors was imported).
    import boltz.main  # noqa: F401
    from boltz.data.mol import load_canonicals

    ccd = load_canonicals(str(mol_dir))  # what `boltz predict` hands the parser
    return {path: parse_one(Path(path), ccd, mol_dir, work) for path in args[2:]}


def parse_one(path: Path, ccd: dict, mol_dir: Path, work: Path) -> dict:
    from boltz.data import const
    from boltz.data.parse.fasta import parse_fasta
    from boltz.data.parse.yaml import parse_yaml

    # as boltz.main.check_inputs/process_input choose: by the file's suffix
    parse = parse_fasta if path.suffix.lower() in (".fa", ".fas", ".fasta") else parse_yaml
    try:
        target = parse(path, dict(ccd), mol_dir, boltz2=True)
    except Exception as e:  # noqa: BLE001  (boltz raises ValueError, AssertionError, KeyError, ...)
        where = traceback.extract_tb(e.__traceback__)[-1]
        error = f"{type(e).__name__}: {e}" + (f" [{where.line}]" if isinstance(e, AssertionError) else "")
        return {"accepted": False, "error": error, "traceback": traceback.format_exc()}

    chain_types = {v: k for k, v in const.chain_type_ids.items()}
    record = target.record
    structure = target.structure
    chains = []
    for info, row in zip(record.chains, structure.chains):
        residues = structure.residues[row["res_idx"] : row["res_idx"] + row["res_num"]]
        chains.append({
            "name": info.chain_name,
            "type": chain_types[info.mol_type],
            "entity": int(info.entity_id),
            "msa_id": info.msa_id if isinstance(info.msa_id, str) else int(info.msa_id),
            "residues": [str(r["name"]) for r in residues],
            "atoms": int(row["atom_num"]),
            "cyclic_period": int(row["cyclic_period"]),
        })  # fmt: skip
    covalent = const.bond_type_ids["COVALENT"]
    options = record.inference_options
    summary = {
        "id": record.id,
        "chains": chains,
        "pocket_constraints": [
            {"binder": int(b), "contacts": [list(map(int, c)) for c in contacts], "max_distance": float(d),
             "force": bool(f)}
            for b, contacts, d, f in (options.pocket_constraints or [])
        ],
        "contact_constraints": [
            {"token1": list(map(int, t1)), "token2": list(map(int, t2)), "max_distance": float(d), "force": bool(f)}
            for t1, t2, d, f in (options.contact_constraints or [])
        ],
        "covalent_bonds": int((structure.bonds["type"] == covalent).sum()),
        "templates": [
            {"name": t.name, "query_chain": t.query_chain, "template_chain": t.template_chain, "force": t.force,
             "threshold": None if t.threshold == float("inf") else t.threshold}
            for t in (record.templates or [])
        ],
        "affinity": None if record.affinity is None else {"chain_id": int(record.affinity.chain_id),
                                                           "mw": float(record.affinity.mw)},
        "extra_mols": sorted(target.extra_mols),
    }  # fmt: skip
    summary["processing"] = process_one(path, ccd, mol_dir, work / path.stem)
    return {"accepted": True, "summary": summary}


def process_one(path: Path, ccd: dict, mol_dir: Path, out: Path) -> dict:
    """boltz.main.process_input: reads and converts the MSA files, dumps templates, constraints and the record.
    It swallows its errors (printing them), so success is judged by the record it writes last."""
    from boltz.main import process_input

    dirs = {
        name: out / name
        for name in ("msa", "processed_msa", "processed_constraints", "processed_templates", "processed_mols",
                     "structures", "records")
    }  # fmt: skip
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        process_input(
            path=path, ccd=dict(ccd), msa_dir=dirs["msa"], mol_dir=mol_dir, boltz2=True,
            use_msa_server=False, msa_server_url="", msa_pairing_strategy="greedy",
            msa_server_username=None, msa_server_password=None, api_key_header=None, api_key_value=None,
            max_msa_seqs=8192, processed_msa_dir=dirs["processed_msa"],
            processed_constraints_dir=dirs["processed_constraints"],
            processed_templates_dir=dirs["processed_templates"], processed_mols_dir=dirs["processed_mols"],
            structure_dir=dirs["structures"], records_dir=dirs["records"],
        )  # fmt: skip
    record = dirs["records"] / f"{path.stem}.json"
    result = {"ok": record.is_file(), "output": printed.getvalue()[-4000:]}
    if record.is_file():
        result["record"] = json.loads(record.read_text())
        result["msas"] = sorted(p.name for p in dirs["processed_msa"].iterdir())
        result["templates"] = sorted(p.name for p in dirs["processed_templates"].iterdir())
    return result


# ---------------------------------------------------------------------------------------------- cli


def cmd_cli(args: list[str]) -> dict:
    """Command lines, `boltz predict ARGS` each, parsed by boltz's own click command without running it.

    args[0] is a JSON file {case: [ARG, ...]}; the answer is {case: {accepted, params | error}}."""
    import click
    from boltz.main import predict

    cases = json.loads(Path(args[0]).read_text())
    answers = {}
    for case, argv in cases.items():
        try:
            with predict.make_context("predict", list(argv)) as ctx:
                params = dict(ctx.params)
        except click.exceptions.ClickException as e:
            answers[case] = {"accepted": False, "error": e.format_message()}
            continue
        answers[case] = {"accepted": True, "params": json.loads(json.dumps(params, default=str))}
    return answers


# ---------------------------------------------------------------------------------------------- checkpoints


def cmd_checkpoints(args: list[str]) -> dict:
    from small_boltz2 import write_checkpoints  # beside this file

    return write_checkpoints(Path(args[0]))


COMMANDS = {
    "mols": cmd_mols,
    "template": cmd_template,
    "parse": cmd_parse,
    "cli": cmd_cli,
    "checkpoints": cmd_checkpoints,
}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

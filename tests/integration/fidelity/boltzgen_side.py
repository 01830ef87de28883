"""The half of the BoltzGen fidelity tests that runs INSIDE the boltzgen venv (hack/boltzgen-venv.sh).

The tests (run from the project venv) call this script as a subprocess with the boltzgen venv's python; it answers
with one JSON document on stdout (boltzgen's own prints go to stderr). Subcommands:

  mols OUT_DIR CODE...           residue/ligand molecules `<CODE>.pkl`, built offline from biotite's bundled CCD
                                 (boltz_side.ccd_mol: boltzgen reads the same molecule format as boltz)
  pdb IN.cif OUT.pdb             the structure rewritten as a PDB file (gemmi), for PDB-format targets
  parse MOL_DIR WORK_DIR YAML... each design spec through boltzgen's own code, three ways:
                                 1. YamlDesignParser.parse_yaml, as `boltzgen check` and the design step call it;
                                 2. check_design_spec, the body of the real `boltzgen check` command;
                                 3. the design step's data module (FromYamlDataModule, instantiated from boltzgen's
                                    own resources/config/design.yaml as `boltzgen run` does) producing the features
                                    of the first sample: parsing, tokenizing, featurizing, everything before the model.
                                 A spec that fails answers {"error": ...}; one that hangs (boltzgen resamples
                                 lengths forever when totalLen cannot be met) answers a timeout error.

MOL_DIR stands in for boltzgen's mols.zip (the Hugging Face dataset boltzgen/inference-data, not reachable here):
load_molecules reads a directory of `<CODE>.pkl` as well as the zip.

Only the standard library, boltzgen and what it depends on (rdkit, gemmi, torch, hydra, biotite) are imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import traceback
from argparse import Namespace
from pathlib import Path

from boltz_side import cmd_mols  # the same offline CCD molecules; boltz_side imports nothing of boltz at load

PARSE_TIMEOUT_S = int(os.environ.get("BOLTZGEN_SIDE_TIMEOUT", "120"))  # per spec and stage: boltzgen never
# returns when totalLen cannot be met


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    real_stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # boltzgen and rdkit print: keep stdout for our answer
        result = COMMANDS[command](args)
    json.dump(result, real_stdout, default=_plain)
    real_stdout.write("\n")
    return 0


def _plain(value):
    """numpy scalars and arrays as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------------------------- parsing


class SpecTimeout(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: int, what: str):
    def expired(signum, frame):  # noqa: ARG001
        raise SpecTimeout(f"{what} did not finish within {seconds} s (boltzgen loops while totalLen is unmet)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def seed(value: int = 0) -> None:
    """Design lengths (N..M) are sampled with numpy's and Python's global generators: fix them."""
    import numpy as np

    np.random.seed(value)
    random.seed(value)


def cmd_parse(args: list[str]) -> dict:
    mol_dir, work = Path(args[0]), Path(args[1])
    from boltzgen.data.mol import load_canonicals

    mols = load_canonicals(str(mol_dir))  # what `boltzgen check` and the data module hand the parser
    return {path: parse_one(Path(path), mols, mol_dir, work) for path in args[2:]}


def parse_one(path: Path, mols: dict, mol_dir: Path, work: Path) -> dict:
    answer: dict = {}
    stages = (("parser", parse_target), ("check", run_check), ("data_module", run_data_module))
    for stage, run in stages:
        seed()
        try:
            with deadline(PARSE_TIMEOUT_S, f"{stage} of {path.name}"):
                answer[stage] = run(path, dict(mols), mol_dir, work)
        except BaseException as exc:  # noqa: BLE001  (asserts and SystemExit too: report, never crash)
            answer["error"] = {
                "stage": stage,
                "type": type(exc).__name__,
                "message": str(exc)[:4000],
                "traceback": traceback.format_exc()[-6000:],
            }
            break
    return answer


def parse_target(path: Path, mols: dict, mol_dir: Path, work: Path) -> dict:  # noqa: ARG001
    """YamlDesignParser.parse_yaml -> Target, summarised per chain."""
    import numpy as np
    from boltzgen.data import const
    from boltzgen.data.parse.schema import YamlDesignParser

    target = YamlDesignParser(mol_dir).parse_yaml(path, mols, mol_dir)
    structure, info = target.structure, target.design_info
    type_names = {v: k for k, v in const.chain_type_ids.items()}
    ss_names = {v: k for k, v in const.ss_type_ids.items()}
    msa_by_chain = {c.chain_name: c.msa_id for c in target.record.chains}

    chains = []
    for chain in structure.chains:
        start, count = int(chain["res_idx"]), int(chain["res_num"])
        rows = slice(start, start + count)
        residues = structure.residues[rows]
        # a residue's number: res_idx + 1, i.e. label_seq_id for residues from a file, the position for the rest
        numbers = residues["res_idx"].astype(int) + 1
        designed = info.res_design_mask[rows].astype(bool)
        binding = info.res_binding_type[rows].astype(int)
        ss = info.res_ss_types[rows].astype(int)
        groups = info.res_structure_groups[rows].astype(int)
        constrained = info.res_aa_constraint_mask[rows]
        name = str(chain["name"])
        chains.append(
            {
                "name": name,
                "type": type_names[int(chain["mol_type"])],
                "residues": count,
                "atoms": int(chain["atom_num"]),
                "numbers": numbers.tolist(),
                "residue_names": [str(r) for r in residues["name"]],
                "present": [bool(p) for p in residues["is_present"]],
                "designed": int(designed.sum()),
                "designed_numbers": numbers[designed].tolist(),
                "binding_numbers": numbers[binding == const.binding_type_ids["BINDING"]].tolist(),
                "not_binding_numbers": numbers[binding == const.binding_type_ids["NOT_BINDING"]].tolist(),
                "secondary_structure": {
                    ss_names[t]: numbers[ss == t].tolist()
                    for t in np.unique(ss).tolist()
                    if ss_names[t] != "UNSPECIFIED"
                },
                "structure_groups": {str(g): numbers[groups == g].tolist() for g in np.unique(groups).tolist()},
                "cyclic_period": int(chain["cyclic_period"]),
                "symmetric_group": int(chain["symmetric_group"]),
                # numbers with some amino acid disallowed -> the one-letter codes still allowed there
                "residue_constraints": {
                    str(numbers[i]): "".join(
                        const.prot_token_to_letter[const.canonical_tokens[a]]
                        for a in np.flatnonzero(constrained[i] == 0)
                    )
                    for i in np.flatnonzero(constrained.sum(axis=1) > 0).tolist()
                },
                "msa": msa_by_chain.get(name),
            }
        )

    atom_chain = {}
    for chain in structure.chains:
        for a in range(int(chain["atom_idx"]), int(chain["atom_idx"]) + int(chain["atom_num"])):
            atom_chain[a] = str(chain["name"])
    atom_residue = {}
    for r_index, residue in enumerate(structure.residues):
        for a in range(int(residue["atom_idx"]), int(residue["atom_idx"]) + int(residue["atom_num"])):
            atom_residue[a] = r_index
    bonds = []
    for bond in structure.bonds:
        a1, a2 = int(bond["atom_1"]), int(bond["atom_2"])
        if atom_chain[a1] == atom_chain[a2] and atom_residue[a1] == atom_residue[a2]:
            continue  # intra-residue (ligand) bonds are chemistry, not constraints
        bonds.append(
            [
                [atom_chain[a1], _residue_in_chain(structure, atom_residue[a1]), str(structure.atoms[a1]["name"])],
                [atom_chain[a2], _residue_in_chain(structure, atom_residue[a2]), str(structure.atoms[a2]["name"])],
            ]
        )
    return {
        "chains": chains,
        "residues": int(len(structure.residues)),
        "atoms": int(len(structure.atoms)),
        "designed": int(info.res_design_mask.sum()),
        "inter_residue_bonds": bonds,
        "extra_mols": sorted(target.extra_mols),
    }


def _residue_in_chain(structure, residue_index: int) -> int:
    """A residue's number (res_idx + 1, as in the chain summaries)."""
    return int(structure.residues[residue_index]["res_idx"]) + 1


def run_check(path: Path, mols: dict, mol_dir: Path, work: Path) -> dict:
    """check_design_spec: the body of `boltzgen check SPEC --moldir MOL_DIR --output OUT`."""
    from boltzgen.cli.boltzgen import check_design_spec

    out = work / "check"
    out.mkdir(parents=True, exist_ok=True)
    check_design_spec(Namespace(output=out, moldir=str(mol_dir)), mol_dir, path, mols)
    cif = out / f"{path.stem}.cif"
    if not cif.is_file():
        raise AssertionError(f"boltzgen check wrote no {cif}")
    return {"cif": str(cif), "cif_bytes": cif.stat().st_size}


def run_data_module(path: Path, mols: dict, mol_dir: Path, work: Path) -> dict:  # noqa: ARG001
    """The design step's data module, from boltzgen's own config, as `boltzgen run` configures it (design step
    overrides of cli/boltzgen.py), and the features of its first sample."""
    import hydra
    import omegaconf
    import torch
    from boltzgen.cli.boltzgen import config_dir  # the directory `boltzgen run` takes step configs from

    config = omegaconf.OmegaConf.load(config_dir / "design.yaml")
    overrides = omegaconf.OmegaConf.from_dotlist(
        [
            f"data.cfg.yaml_path=[{path}]",
            f"data.cfg.moldir={mol_dir}",
            "data.cfg.multiplicity=1",
            f"data.cfg.output_dir={work / 'design'}",
            f"output={work / 'design'}",
            "data.num_workers=0",
            "data.pin_memory=false",
        ]
    )
    config = omegaconf.OmegaConf.merge(config, overrides)
    module = hydra.utils.instantiate(config.data)
    dataset = module.predict_set
    features = dataset[0]
    batch = next(iter(module.predict_dataloader()))  # collate, as the trainer sees it

    def tensor(name: str) -> torch.Tensor:
        return features[name]

    return {
        "tokens": int(tensor("res_type").shape[0]),
        "atoms": int(tensor("atom_pad_mask").sum().item()),
        "design_tokens": int(tensor("design_mask").sum().item()),
        "chain_design_tokens": int(tensor("chain_design_mask").sum().item()),
        "binding_tokens": int((tensor("binding_type") == 1).sum().item()),
        "cyclic_tokens": int((tensor("cyclic") > 0).sum().item()),
        "ss_tokens": int(tensor("design_ss_mask").sum().item()),
        "batch_keys": len(batch),
        "id": features["id"],
    }


def cmd_pdb(args: list[str]) -> dict:
    import gemmi

    structure = gemmi.read_structure(args[0])
    structure.setup_entities()
    Path(args[1]).parent.mkdir(parents=True, exist_ok=True)
    structure.write_pdb(args[1])
    return {"path": args[1]}


COMMANDS = {"mols": cmd_mols, "parse": cmd_parse, "pdb": cmd_pdb}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

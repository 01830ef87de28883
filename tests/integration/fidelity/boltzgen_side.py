"""The half of the BoltzGen fidelity tests that runs INSIDE the boltzgen venv (hack/boltzgen-venv.sh).

The tests (run from the project venv) call this script as a subprocess with the boltzgen venv's python; it answers
with one JSON document on stdout (boltzgen's own prints go to stderr). Subcommands:

  mols OUT_DIR CODE...           residue/ligand molecules `<CODE>.pkl`, built offline from biotite's bundled CCD
                                 (boltz_side.ccd_mol: boltzgen reads the same molecule format as boltz)
  pdb IN.cif OUT.pdb             the structure rewritten as a PDB file (gemmi), for PDB-format targets
  shards OUT_DIR JSON            design shard folders laid out as boltzgen's design..analysis steps write them
                                 (cmd_shards), for `boltzgen merge` and filtering to read
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


# ---------------------------------------------------------------------------------------------- shard folders

AMINO = "ACDEFGHIKLMNPQRSTVWY"
SPEC_STEM = "design-spec"  # builders/campaign.SPEC_FILE's stem: boltzgen names designs after the spec file


def cmd_shards(args: list[str]) -> dict:
    """Shard output folders as one `boltzgen run --steps design ... analysis` leaves them (0.3.2: task/predict/
    writer.py names, task/analyze/analyze.py tables), one per shard under OUT_DIR/<index>/.

    JSON options: shards, backbones (designs per shard), sequences (inverse-fold sequences per backbone: ids
    `<stem>_<b>_<n>`, n zero-padded to the digits of sequences-1, as the writer does for multiplicity > 1), repeats
    (designs of the last shard that reuse a sequence of shard 0: boltzgen's filter drops them), structure (a CIF
    file used for every structure; its size stands in for a design's), tokens and atoms (sizes of the arrays the
    folding writer saves in fold_out_npz/ and fold_out_design_npz/: const.eval_keys, compressed), length (designed
    residues).
    The metric values are random; the columns are those Filter reads. Answers the design ids per shard.
    """
    import numpy as np
    import pandas as pd

    out, o = Path(args[0]), json.loads(args[1])
    structure = Path(o["structure"]).read_bytes() if o.get("structure") else b"data_design\n#\n"
    tokens, atoms = int(o.get("tokens", 8)), int(o.get("atoms", 64))
    length, k = int(o.get("length", 12)), int(o["sequences"])
    rng = np.random.default_rng(0)
    first_sequences: list[str] = []
    ids: dict[int, list[str]] = {}
    for shard in range(int(o["shards"])):
        root = out / str(shard)
        designs, folded = root / "intermediate_designs", root / "intermediate_designs_inverse_folded"
        for d in (
            designs,
            *(
                folded / s
                for s in ("refold_cif", "refold_design_cif", "fold_out_npz", "fold_out_design_npz", "metrics_tmp")
            ),
        ):
            d.mkdir(parents=True, exist_ok=True)
        (root / "config").mkdir(exist_ok=True)
        for step in ("design", "inverse_folding", "folding", "design_folding", "analysis"):
            (root / "config" / f"{step}.yaml").write_text(f"_target_: boltzgen.step.{step}\n")
        (root / "steps.yaml").write_text("steps: []\n")
        rows, table = [], []
        backbones = int(o["backbones"])
        bdigits, kdigits = len(str(backbones - 1)), len(str(k - 1))
        for b in range(backbones):
            name = f"{SPEC_STEM}_{b:0{bdigits}d}" if backbones > 1 else SPEC_STEM
            for suffix in (".cif", "_native.cif"):
                (designs / f"{name}{suffix}").write_bytes(structure)
            np.savez_compressed(designs / f"{name}.npz", design_mask=np.ones(tokens, dtype=bool))
            for n in range(k):
                design_id = f"{name}_{n:0{kdigits}d}" if k > 1 else name
                sequence = "".join(rng.choice(list(AMINO), length))
                if shard == int(o["shards"]) - 1 and len(rows) < int(o.get("repeats", 0)):
                    sequence = first_sequences[len(rows)]
                if shard == 0:
                    first_sequences.append(sequence)
                for sub in ("", "refold_cif/", "refold_design_cif/"):
                    (folded / f"{sub}{design_id}.cif").write_bytes(structure)
                (folded / f"{design_id}_native.cif").write_bytes(structure)
                np.savez_compressed(folded / f"{design_id}.npz", design_mask=np.ones(tokens, dtype=bool))
                for sub in ("fold_out_npz", "fold_out_design_npz"):
                    np.savez_compressed(folded / sub / f"{design_id}.npz", **_fold_arrays(rng, tokens, atoms))
                for kind in ("data", "metrics"):
                    np.savez_compressed(folded / "metrics_tmp" / f"{kind}_{design_id}.npz", x=np.zeros(4))
                rows.append(_metric_row(design_id, sequence, rng))
                table.append({"id": design_id, "sequence": sequence, "ca_coords": np.zeros((length, 3))})
        pd.DataFrame(rows).to_csv(folded / "aggregate_metrics_analyze.csv", index=False)
        pd.DataFrame([{"target_id": SPEC_STEM, "design_ptm": 0.5}]).to_csv(
            folded / "per_target_metrics_analyze.csv", index=False
        )
        pd.DataFrame(table).to_pickle(folded / "ca_coords_sequences.pkl.gz", compression="gzip")
        ids[shard] = [r["id"] for r in rows]
    return {"ids": ids}


def _fold_arrays(rng, tokens: int, atoms: int) -> dict:
    """What task/predict/writer.py saves of a folding prediction (the const.eval_keys it has), shaped as Boltz-2
    returns them: confidence scalars, coordinates, one-hot residue types and atom-to-token map, token masks."""
    import numpy as np

    one_hot = lambda rows, cols: np.eye(cols, dtype=np.float32)[rng.integers(0, cols, rows)]  # noqa: E731
    arrays = {key: np.float32(rng.random()) for key in (
        "iptm", "ptm", "design_iptm", "design_iiptm", "design_to_target_iptm", "design_ptm", "target_ptm",
        "min_interaction_pae", "min_design_to_target_pae", "complex_plddt", "complex_iplddt", "complex_pde",
        "complex_ipde")}  # fmt: skip
    arrays.update(
        coords=rng.random((1, atoms, 3), dtype=np.float32) * 50, input_coords=rng.random((1, atoms, 3), dtype=np.float32) * 50,
        res_type=one_hot(tokens, 33), atom_to_token=one_hot(atoms, tokens), token_index=np.arange(tokens),
        atom_resolved_mask=np.ones(atoms, dtype=bool), mol_type=np.zeros(tokens, dtype=np.int64),
        backbone_mask=np.ones(atoms, dtype=bool), design_residue_iptm=rng.random(tokens, dtype=np.float32),
    )  # fmt: skip
    return arrays


def _metric_row(design_id: str, sequence: str, rng) -> dict:
    """The columns boltzgen's Filter reads (load_dataframe, filter_df, sort_df, the report), random values."""
    u = lambda low, high: float(rng.uniform(low, high))  # noqa: E731
    row = {
        "id": design_id, "file_name": f"{design_id}.cif", "designed_sequence": sequence,
        "designed_chain_sequence": sequence, "num_design": len(sequence),
        "design_to_target_iptm": u(0.2, 0.9), "design_iptm": u(0.2, 0.9), "design_iiptm": u(0.2, 0.9),
        "design_ptm": u(0.3, 0.9), "iptm": u(0.2, 0.9), "ptm": u(0.3, 0.9),
        "min_design_to_target_pae": u(1, 20), "min_interaction_pae": u(1, 20),
        "bb_rmsd": u(0.5, 2), "bb_rmsd_design": u(0.5, 2), "rmsd": u(0.5, 2), "rmsd_design": u(0.5, 2),
        "designfolding-bb_rmsd": u(0.5, 2), "designfolding-rmsd": u(0.5, 2),
        "plip_hbonds_refolded": int(rng.integers(0, 6)), "plip_saltbridge_refolded": int(rng.integers(0, 3)),
        "delta_sasa_refolded": u(300, 1500), "design_hydrophobicity": u(-1, 1), "loop": 0.3, "helix": 0.5,
        "sheet": 0.2,
    }  # fmt: skip
    for name, code in (("ALA", "A"), ("GLY", "G"), ("GLU", "E"), ("LEU", "L"), ("VAL", "V"), ("CYS", "C")):
        row[f"{name}_fraction"] = sequence.count(code) / len(sequence)
    return row


COMMANDS = {"mols": cmd_mols, "parse": cmd_parse, "pdb": cmd_pdb, "shards": cmd_shards}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

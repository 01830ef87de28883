"""Bond constraints checked before any Job (issue: a bond to a SMILES ligand's atom was accepted and landed on an
atom boltz named, or failed on a GPU): only atoms boltz knows by name, of canonical residues and CCD ligands."""

from __future__ import annotations

import pytest

from boltz_operator.api import BoltzPredictionSpec
from boltz_operator.render import validate_prediction


def spec(atom1: dict, atom2: dict, ligand: dict | None = None, **protein) -> BoltzPredictionSpec:
    return BoltzPredictionSpec.model_validate(
        {
            "sequences": [
                {"protein": {"ids": ["A"], "sequence": "MKCHG", "msa": {"empty": True}, **protein}},
                {"ligand": {"ids": ["B"], **(ligand or {"smiles": "C=CC(=O)Nc1ccc(cc1)C(=O)NC"})}},
            ],
            "constraints": [{"bond": {"atom1": atom1, "atom2": atom2}}],
            "results": {"s3": {"uri": "s3://bucket/base"}},
        }
    )


def test_a_bond_to_an_atom_of_a_smiles_ligand_is_refused_with_what_to_do():
    errors = validate_prediction(
        spec({"chain": "A", "residue": 3, "atom": "SG"}, {"chain": "B", "residue": 1, "atom": "C16"})
    )
    assert errors == [
        "constraints[0] (bond) atom2: chain B is a SMILES ligand, whose atom names boltz makes up itself (element + "
        "canonical rank): a bond cannot name one reliably; give the ligand as a CCD code, or drop the bond"
    ]


def test_a_bond_to_a_ccd_ligand_and_an_existing_residue_atom_is_accepted():
    ok = spec({"chain": "A", "residue": 3, "atom": "SG"}, {"chain": "B", "residue": 1, "atom": "C1"}, {"ccd": "SAH"})
    assert validate_prediction(ok) == []


@pytest.mark.parametrize(("residue", "atom", "letter"), [(2, "SG", "K"), (5, "CB", "G"), (1, "OXT", "M")])
def test_an_atom_the_canonical_residue_lacks_is_refused_naming_the_residue_and_its_atoms(residue, atom, letter):
    bad = spec(
        {"chain": "A", "residue": residue, "atom": atom}, {"chain": "B", "residue": 1, "atom": "C1"}, {"ccd": "SAH"}
    )
    [error] = validate_prediction(bad)
    assert error.startswith(
        f"constraints[0] (bond) atom1: residue {residue} of chain A ({letter}) has no atom {atom!r}"
    )
    assert "its atoms are" in error and "CA" in error


def test_a_modified_residue_is_left_to_the_prepare_step_which_reads_its_ccd_entry():
    modified = spec(
        {"chain": "A", "residue": 2, "atom": "OG"},
        {"chain": "B", "residue": 1, "atom": "C1"},
        {"ccd": "SAH"},
        modifications=[{"position": 2, "ccd": "SEP"}],
    )
    assert validate_prediction(modified) == []

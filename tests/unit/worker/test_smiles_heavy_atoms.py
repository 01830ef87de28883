"""heavy_atom_count: the tokenizer that stands in for RDKit's RemoveHs(mol).GetNumAtoms()."""

from __future__ import annotations

import pytest

from boltz_contract.boltz_input import heavy_atom_count
from boltz_contract.smiles import SmilesError, atom_symbols


@pytest.mark.parametrize(
    "smiles, count",
    [
        ("C", 1),
        ("CCO", 3),  # ethanol
        ("CC(=O)Oc1ccccc1C(=O)O", 13),  # aspirin
        ("Cn1cnc2c1c(=O)n(C)c(=O)n2C", 14),  # caffeine
        ("ClC(Cl)(Cl)Br", 5),  # two-letter organic atoms are one atom each
        ("c1ccc2ccccc2c1", 10),  # naphthalene
        ("[nH]1cccc1", 5),  # the bracket hydrogen is not an atom of its own
        ("[2H]C([2H])([2H])O", 2),  # deuterium is hydrogen
        ("[H][H]", 0),
        ("[Na+].[Cl-]", 2),
        ("C[C@@H](N)C(=O)O", 6),  # alanine, with chirality
        ("[13CH4]", 1),  # isotope
        ("[Se]1C=CC=C1", 5),
        ("c1cc[se]c1", 5),  # aromatic selenium in brackets
        ("C%10CC%10", 3),  # two-digit ring bond labels
        ("C1CC1C1CC1", 6),  # ring labels reused after closing
        ("Sc1ccccc1", 7),  # outside brackets "Sc" is S + aromatic c, not scandium
        ("[Sc]", 1),
        ("F/C=C/F", 4),
        ("CC#N", 3),
        ("*C", 2),  # a wildcard atom counts, as in RDKit
        ("O=[N+]([O-])c1ccccc1", 9),
        ("[Fe+2]", 1),
        ("[CH3:1]C", 2),  # atom-map class
    ],
)
def test_heavy_atom_count(smiles, count):
    assert heavy_atom_count(smiles) == count


def test_atom_symbols_normalise_aromatic_atoms():
    assert atom_symbols("c1ncc[nH]1") == ["C", "N", "C", "C", "N"]


@pytest.mark.parametrize(
    "smiles, message",
    [
        ("", "empty SMILES"),
        ("   ", "empty SMILES"),
        ("C[C", "unclosed '['"),
        ("C)C", "unbalanced ')'"),
        ("C(C", "unbalanced '('"),
        ("C1CC", "unclosed ring bond 1"),
        ("C%1C", "'%' must be followed by two digits"),
        ("CxC", "unexpected character 'x'"),
        ("HC", "unexpected character 'H'"),
        ("C[]C", "no element in bracket atom"),
        ("()", "no atoms"),
    ],
)
def test_malformed_smiles_are_rejected(smiles, message):
    with pytest.raises(SmilesError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        heavy_atom_count(smiles)


def test_non_string_is_rejected():
    with pytest.raises(SmilesError):
        heavy_atom_count(None)  # type: ignore[arg-type]

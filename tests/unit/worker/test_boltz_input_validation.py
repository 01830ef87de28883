"""validate_boltz_input follows boltz 2.2.1's parse_boltz_schema: every rule, and documents that pass."""

from __future__ import annotations

import copy

import pytest

from boltz_contract.boltz_input import affinity_binder, local_paths, missing_msa_chains, validate_boltz_input

PROTEIN = "MADQLTEEQIAEFKEAFSLFDKDGDGTITTKELGTVMRSLGQNPTEAELQDMINEVDADGNGTIDFPEFLTMMARK"


def complex_doc() -> dict:
    """Every feature boltz 2.2.1 documents, valid together."""
    return {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": PROTEIN, "msa": "/etc/boltz-run/a.a3m",
                         "modifications": [{"position": 2, "ccd": "SEP"}]}},
            {"protein": {"id": ["B", "C"], "sequence": "AKLSILPWGHC", "msa": "msa/bc.csv", "cyclic": False}},
            {"dna": {"id": "D", "sequence": "ACGTN"}},
            {"rna": {"id": "E", "sequence": "GCAUAGC"}},
            {"ligand": {"id": "F", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}},
            {"ligand": {"id": ["G", "H"], "ccd": "SAH"}},
        ],
        "constraints": [
            {"bond": {"atom1": ["A", 1, "CA"], "atom2": ["B", 2, "N"]}},
            {"pocket": {"binder": "F", "contacts": [["A", 10], ["B", 3], ["G", "C1"]], "max_distance": 6,
                        "force": True}},
            {"contact": {"token1": ["A", 5], "token2": ["F", "C3"], "max_distance": 8.5}},
        ],
        "templates": [
            {"cif": "/etc/boltz-run/t.cif"},
            {"pdb": "t2.pdb", "chain_id": ["A", "B"], "template_id": ["X", "Y"], "force": True, "threshold": 2.0},
        ],
        "properties": [{"affinity": {"binder": "F"}}],
    }  # fmt: skip


def with_change(change) -> dict:
    doc = copy.deepcopy(complex_doc())
    change(doc)
    return doc


def one_error(doc) -> str:
    errors = validate_boltz_input(doc)
    assert len(errors) == 1, errors
    return errors[0]


def test_a_document_using_every_feature_is_valid():
    assert validate_boltz_input(complex_doc()) == []


def test_a_minimal_document_without_version_is_valid():
    assert validate_boltz_input({"sequences": [{"protein": {"id": "A", "sequence": "MKV", "msa": "empty"}}]}) == []


@pytest.mark.parametrize(
    "doc, expected",
    [
        (None, "must be a mapping"),
        ([], "must be a mapping"),
        ({"version": 2, "sequences": [{"rna": {"id": "A", "sequence": "ACGU"}}]}, "version must be 1"),
        ({"sequences": []}, "'sequences' must be a non-empty list"),
        ({}, "'sequences' must be a non-empty list"),
        ({"sequences": [{"rna": {"id": "A", "sequence": "ACGU"}}], "constraint": []}, "unknown top-level key"),
        ({"sequences": [{"peptide": {"id": "A", "sequence": "MK"}}]}, "unknown entity type 'peptide'"),
        ({"sequences": [{"rna": {"id": "A", "sequence": "ACGU"}, "dna": {"id": "B", "sequence": "A"}}]},
         "exactly one key"),
        ({"sequences": [{"rna": {"sequence": "ACGU"}}]}, "'id' must be a chain id"),
        ({"sequences": [{"rna": {"id": 7, "sequence": "ACGU"}}]}, "'id' must be a chain id"),
        ({"sequences": [{"rna": {"id": [], "sequence": "ACGU"}}]}, "'id' must be a chain id"),
        ({"sequences": [{"rna": {"id": ["A", "A"], "sequence": "ACGU"}}]}, "repeated chain id"),
        ({"sequences": [{"rna": {"id": "A"}}]}, "'sequence' must be a non-empty string"),
        ({"sequences": [{"rna": {"id": "A", "sequence": "ACGU", "msa": "x.a3m"}}]}, "unknown key 'msa'"),
    ],
)  # fmt: skip
def test_structural_errors_are_reported(doc, expected):
    assert expected in one_error(doc)


def test_chain_ids_must_be_unique_across_entities():
    doc = with_change(lambda d: d["sequences"][3]["rna"].update(id="B"))
    assert "chain id 'B' is used more than once" in one_error(doc)


@pytest.mark.parametrize(
    "kind, sequence, bad",
    [
        ("protein", "MKVlk", "kl"),  # lower case would silently become UNK in boltz
        ("protein", "MKV1", "1"),
        ("dna", "ACGU", "U"),
        ("rna", "ACGT", "T"),
    ],
)
def test_sequences_use_their_alphabet(kind, sequence, bad):
    body = {"id": "A", "sequence": sequence}
    if kind == "protein":
        body["msa"] = "empty"
    error = one_error({"sequences": [{kind: body}]})
    assert f"invalid characters {bad!r}" in error


def test_protein_accepts_ambiguity_codes():
    assert validate_boltz_input({"sequences": [{"protein": {"id": "A", "sequence": "MXBZJOU", "msa": "empty"}}]}) == []


@pytest.mark.parametrize(
    "modifications, expected",
    [
        ([{"position": 0, "ccd": "SEP"}], "outside the sequence (1..5)"),
        ([{"position": 6, "ccd": "SEP"}], "outside the sequence (1..5)"),
        ([{"position": "2", "ccd": "SEP"}], "outside the sequence"),
        ([{"position": 2}], "exactly 'position' and 'ccd'"),
        ([{"position": 2, "ccd": ""}], "'ccd' must be a CCD code"),
        ({"position": 2, "ccd": "SEP"}, "must be a list"),
    ],
)
def test_modifications(modifications, expected):
    doc = {"sequences": [{"rna": {"id": "A", "sequence": "ACGUA", "modifications": modifications}}]}
    assert expected in one_error(doc)


def test_cyclic_must_be_boolean_and_is_not_for_ligands():
    assert "'cyclic' must be true or false" in one_error(
        {"sequences": [{"dna": {"id": "A", "sequence": "ACGT", "cyclic": "yes"}}]}
    )
    assert "unknown key 'cyclic'" in one_error({"sequences": [{"ligand": {"id": "L", "ccd": "ATP", "cyclic": True}}]})


@pytest.mark.parametrize(
    "ligand, expected",
    [
        ({"id": "L"}, "exactly one of 'smiles' or 'ccd'"),
        ({"id": "L", "smiles": "CCO", "ccd": "EOH"}, "exactly one of 'smiles' or 'ccd'"),
        ({"id": "L", "smiles": ""}, "'smiles' must be a non-empty string"),
        ({"id": "L", "smiles": "C1CC"}, "invalid SMILES 'C1CC': unclosed ring bond 1"),
        ({"id": "L", "smiles": "CC(C"}, "unbalanced '('"),
        ({"id": "L", "ccd": []}, "'ccd' must be a CCD code or a non-empty list"),
        ({"id": "L", "ccd": ["NAG", 3]}, "'ccd' must be a CCD code or a non-empty list"),
    ],
)
def test_ligands(ligand, expected):
    assert expected in one_error({"sequences": [{"ligand": ligand}]})


def test_multi_residue_ccd_ligand_is_valid_without_affinity():
    assert validate_boltz_input({"sequences": [{"ligand": {"id": "L", "ccd": ["NAG", "NAG"]}}]}) == []


# ---------------------------------------------------------------------------------------------- msa


@pytest.mark.parametrize("msa", ["x.a3m", "/abs/x.csv", "empty", None, ""])
def test_msa_values_boltz_accepts(msa):
    assert validate_boltz_input({"sequences": [{"protein": {"id": "A", "sequence": "MK", "msa": msa}}]}) == []


@pytest.mark.parametrize("msa", ["x.fasta", "x.A3M", 3, "none"])
def test_msa_values_boltz_rejects(msa):
    error = one_error({"sequences": [{"protein": {"id": "A", "sequence": "MK", "msa": msa}}]})
    assert "'msa' must be 'empty' or a path ending in .a3m or .csv" in error


def test_msa_files_and_server_msas_cannot_be_mixed():
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "a.a3m"}},
            {"protein": {"id": "B", "sequence": "MV"}},
        ]
    }
    assert one_error(doc) == "cannot mix MSA files (chains A) with server-generated MSAs (chains B have no msa)"


def test_empty_msa_mixes_with_either():
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "empty"}},
            {"protein": {"id": "B", "sequence": "MV"}},
            {"protein": {"id": "C", "sequence": "MW"}},
        ]
    }
    assert validate_boltz_input(doc) == []
    assert missing_msa_chains(doc) == ["B", "C"]


def test_identical_proteins_must_share_their_msa():
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "a.a3m"}},
            {"protein": {"id": "B", "sequence": "MK", "msa": "b.a3m"}},
        ]
    }
    assert "same sequence must share the same msa" in one_error(doc)


def test_missing_msa_chains_lists_every_protein_copy_without_msa():
    doc = {
        "sequences": [
            {"protein": {"id": ["A", "B"], "sequence": "MK"}},
            {"protein": {"id": "C", "sequence": "MV", "msa": None}},
            {"protein": {"id": "D", "sequence": "MW", "msa": "empty"}},
            {"rna": {"id": "E", "sequence": "ACGU"}},
        ]
    }
    assert missing_msa_chains(doc) == ["A", "B", "C"]
    assert missing_msa_chains(complex_doc()) == []
    assert missing_msa_chains("not a doc") == []


# ---------------------------------------------------------------------------------------------- constraints


@pytest.mark.parametrize(
    "constraint, expected",
    [
        ({"bond": {"atom1": ["A", 1, "CA"], "atom2": ["Z", 1, "N"]}}, "chain 'Z' is not a chain of the input"),
        ({"bond": {"atom1": ["A", 1, "CA"]}}, "'atom2' must be [chain, residue index, atom name]"),
        ({"bond": {"atom1": ["A", 1], "atom2": ["B", 1, "N"]}}, "'atom1' must be [chain, residue index, atom name]"),
        ({"bond": {"atom1": ["A", 0, "CA"], "atom2": ["B", 1, "N"]}}, "residue index must be an integer >= 1"),
        ({"bond": {"atom1": ["B", 12, "CA"], "atom2": ["B", 1, "N"]}}, "residue 12 is beyond the end of chain B"),
        ({"pocket": {"binder": "Q", "contacts": [["A", 1]]}}, "binder 'Q' is not a chain"),
        ({"pocket": {"binder": "F", "contacts": []}}, "'contacts' must be a non-empty list"),
        ({"pocket": {"binder": "F", "contacts": [["A"]]}}, "must be [chain, residue index or atom name]"),
        ({"pocket": {"binder": "F", "contacts": [["G", 1]]}}, "ligand chain 'G' is addressed by atom name"),
        ({"pocket": {"binder": "F", "contacts": [["A", 1]], "max_distance": -1}}, "'max_distance' must be a positive"),
        ({"pocket": {"binder": "F", "contacts": [["A", 1]], "force": "yes"}}, "'force' must be true or false"),
        ({"pocket": {"binder": ["F"], "contacts": [["A", 1]]}}, "binder ['F'] is not a chain"),
        ({"contact": {"token1": ["A", 1]}}, "token2: must be [chain, residue index or atom name]"),
        ({"contact": {"token1": [["A"], 1], "token2": ["B", 1]}}, "is not a chain of the input"),
        ({"angle": {}}, "exactly one key: bond, pocket or contact"),
    ],
)  # fmt: skip
def test_constraints(constraint, expected):
    doc = with_change(lambda d: d.update(constraints=[constraint]))
    assert expected in one_error(doc)


# ---------------------------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    "template, expected",
    [
        ({"chain_id": "A"}, "exactly one of 'cif' or 'pdb'"),
        ({"cif": "a.cif", "pdb": "a.pdb"}, "exactly one of 'cif' or 'pdb'"),
        ({"cif": "a.cif", "chain_id": ["A", "B"], "template_id": ["X"]}, "the same number of chains"),
        ({"cif": "a.cif", "chain_id": "F"}, "chain 'F' is not a protein chain"),
        ({"cif": "a.cif", "force": True}, "'force: true' needs a numeric 'threshold'"),
        ({"cif": "a.cif", "force": 1, "threshold": 2}, "'force' must be true or false"),
        ({"cif": "a.cif", "ids": ["A"]}, "unknown key 'ids'"),
    ],
)
def test_templates(template, expected):
    doc = with_change(lambda d: d.update(templates=[template]))
    assert expected in one_error(doc)


def test_template_with_single_chain_ids_is_valid():
    doc = with_change(lambda d: d.update(templates=[{"cif": "a.cif", "chain_id": "A", "template_id": "Q"}]))
    assert validate_boltz_input(doc) == []


# ---------------------------------------------------------------------------------------------- affinity


@pytest.mark.parametrize(
    "properties, expected",
    [
        ([{"affinity": {"binder": "F"}}, {"affinity": {"binder": "F"}}], "only one affinity property"),
        ([{"affinity": {"binder": "Z"}}], "affinity binder 'Z' is not a chain of the input"),
        ([{"affinity": {"binder": "A"}}], "affinity binder 'A' is a protein; affinity is only supported for ligands"),
        ([{"affinity": {"binder": ["F"]}}], "must be a single chain id"),
        ([{"affinity": {"binder": "G"}}], "affinity binder 'G' has several copies (G, H)"),
        ([{"solubility": {}}], "properties[0] must be {affinity: {binder: <ligand chain id>}}"),
    ],
)
def test_affinity_rules(properties, expected):
    doc = with_change(lambda d: d.update(properties=properties))
    assert expected in one_error(doc)


def test_affinity_refuses_identical_ligands_given_as_separate_entries():
    # boltz groups entries with the same SMILES into one entity with several copies.
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "empty"}},
            {"ligand": {"id": "L1", "smiles": "CCO"}},
            {"ligand": {"id": "L2", "smiles": "CCO"}},
        ],
        "properties": [{"affinity": {"binder": "L1"}}],
    }
    assert "several copies (L1, L2)" in one_error(doc)


def test_affinity_refuses_multi_residue_ccd_ligands():
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "empty"}},
            {"ligand": {"id": "L", "ccd": ["NAG", "NAG"]}},
        ],
        "properties": [{"affinity": {"binder": "L"}}],
    }
    assert "multi-residue CCD ligand" in one_error(doc)


def test_affinity_refuses_ligands_over_128_heavy_atoms():
    big = "C" * 140
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "empty"}},
            {"ligand": {"id": "B", "smiles": big}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    assert one_error(doc) == "ligand B has 140 heavy atoms; affinity supports at most 128"


def test_128_heavy_atoms_is_still_allowed_and_size_does_not_matter_without_affinity():
    doc = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MK", "msa": "empty"}},
            {"ligand": {"id": "B", "smiles": "C" * 128}},
            {"ligand": {"id": "C", "smiles": "C" * 300}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    assert validate_boltz_input(doc) == []


def test_every_error_is_reported_not_only_the_first():
    doc = {
        "version": 3,
        "sequences": [{"protein": {"id": "A", "sequence": "mk"}}, {"ligand": {"id": "A", "smiles": "C("}}],
        "properties": [{"affinity": {"binder": "Q"}}],
    }
    errors = validate_boltz_input(doc)
    assert len(errors) == 5, errors


# ---------------------------------------------------------------------------------------------- helpers


def test_affinity_binder_and_local_paths():
    doc = complex_doc()
    assert affinity_binder(doc) == "F"
    assert affinity_binder({"sequences": []}) is None
    assert local_paths(doc) == ["/etc/boltz-run/a.a3m", "msa/bc.csv", "/etc/boltz-run/t.cif", "t2.pdb"]

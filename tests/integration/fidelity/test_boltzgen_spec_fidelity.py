"""BoltzGen fidelity: the design spec the operator renders, read by the real boltzgen 0.3.2.

boltzgen pins numpy==2.0.2 (boltz needs numpy<2, kopf click>=8.2), so it gets a venv of its own, built once and
cached by hack/boltzgen-venv.sh (it borrows torch from the boltz venv instead of downloading it again). These tests
build BoltzGenCampaign design specs with the project's models, render them with the operator's own renderer
(render_design_spec) and serialiser (yaml.safe_dump, as the campaign ConfigMap builder does), put a real structure
where the rendered `path:` points, and hand the YAML, under the file name the worker gives it, to boltzgen_side.py,
run by the boltzgen venv's python. There, boltzgen's own code reads it three ways: YamlDesignParser (what both
`boltzgen check` and the design step call), check_design_spec (the body of `boltzgen check`) and the design step's
data module instantiated from boltzgen's own design.yaml (parse, tokenize, featurize: everything before the model).

No model weights and no mols.zip are needed: the molecules boltzgen reads (canonical residues, the target file's
ligands, CCD ligands) are generated offline from biotite's CCD into a directory, which boltzgen's load_molecules
accepts in place of mols.zip.

The target structure is PDB entry 3CH4 (tests/fixtures/structures/3ch4.cif, public domain): its label_asym_id
(A) differs from its auth_asym_id (B), and label_seq_id = auth_seq_id + 2, which BoltzGen's chain ids and residue
ranges follow (label_*), and it has unresolved residues (63..69 inside, 196..202 at the C-terminus).

Environment:
  BOLTZ_CACHE_HOME         cache root (default ~/.cache/boltz-operator): the venvs, generated molecules
  BOLTZ_FIDELITY_BUILD=0   never build the venvs here: skip when they are not built already
  CI                       set (as on CI): a venv that cannot be built fails these tests instead of skipping them
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

import pytest
import yaml

from boltz_operator.api.design_spec import DesignSpec
from boltz_operator.builders.campaign import SPEC_FILE
from boltz_operator.render.boltzgen_yaml import render_design_spec
from support.fidelity import BOLTZGEN_VERSION, TARGET, relocate

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# 3CH4, entity 1 (label chain A): label_seq_id 1..202; 63..69 and 196..202 are not in the model.
TARGET_LENGTH = 202
TARGET_UNRESOLVED_TAIL = range(196, 203)
TARGET_GAP = range(63, 70)

# ---------------------------------------------------------------------------------------------- the specs

TARGET_CM = {"configMapKeyRef": {"name": "targets", "key": "3ch4.cif"}}
TARGET_S3 = {"s3": {"uri": "s3://targets/kinases/3ch4.cif"}}
TARGET_PDB = {"configMapKeyRef": {"name": "targets", "key": "3ch4.pdb"}}


def _p(ids: list[str], sequence: str, **fields) -> dict:
    return {"protein": {"ids": ids, "sequence": sequence, **fields}}


def _f(**fields) -> dict:
    return {"file": {**TARGET_CM, **fields}}


def _bond(a: tuple, b: tuple) -> dict:
    return {"bond": {"atom1": dict(zip(("chain", "residue", "atom"), a)),
                     "atom2": dict(zip(("chain", "residue", "atom"), b))}}  # fmt: skip


# Each case: a BoltzGenCampaign spec.designSpec as a user writes it (camelCase, as in the CR).
CASES: dict[str, dict] = {
    # protein-anything: a designed binder against chain A of a file, a binding site, parts of the target hidden
    "binder": {
        "entities": [
            {"protein": {"ids": ["G"], "sequence": "60..80", "secondaryStructure": {"helix": "1..10"}}},
            {
                "file": {
                    **TARGET_CM,
                    "include": [{"chain": {"id": "A", "resIndex": "1..150", "symmetricGroup": 2}}],
                    "exclude": [{"chain": {"id": "A", "resIndex": "100..110"}}],
                    "bindingTypes": [{"chain": {"id": "A", "binding": "40..45,52", "notBinding": "1..10"}}],
                    "structureGroups": [
                        {"group": {"id": "all", "visibility": 1}},
                        {"group": {"id": "A", "resIndex": "120..150", "visibility": 0}},
                    ],
                }
            },
        ]
    },
    # the same target from S3 (another path in the rendered YAML), only residues near a site
    "binder_s3_proximity": {
        "entities": [
            {"protein": {"ids": ["G"], "sequence": "12"}},
            {
                "file": {
                    **TARGET_S3,
                    # BoltzGen keeps what is both included (default: everything) and near the given residues
                    "includeProximity": [{"chain": {"id": "A", "resIndex": "40", "radius": 10}}],
                    "resetResIndex": [{"chain": {"id": "A"}}],  # then numbers chain A's residues 1, 2, ...
                    "useAssembly": False,
                }
            },
        ]
    },
    # a redesign of the file's own residues: design / notDesign, secondary structure, an insertion
    "redesign": {
        "entities": [
            {
                "file": {
                    **TARGET_CM,
                    "include": [{"chain": {"id": "A"}}],
                    "design": [{"chain": {"id": "A", "resIndex": "20..25"}}],
                    "notDesign": [{"chain": {"id": "A", "resIndex": "22"}}],
                    # only designed residues may carry a secondary structure (DesignInfo.is_valid)
                    "secondaryStructure": [{"chain": {"id": "A", "helix": "20..21", "loop": "23..25"}}],
                    "designInsertions": [{"insertion": {"id": "A", "resIndex": 30, "numResidues": "3..5"}}],
                }
            },
        ]
    },
    # a PDB file (BoltzGen picks its parser by extension; PDB chains are the author's: B here)
    "binder_pdb": {
        "entities": [
            {"protein": {"ids": ["G"], "sequence": "20"}},
            {"file": {**TARGET_PDB, "include": [{"chain": {"id": "B"}}]}},
        ]
    },
    # peptide-anything: a cyclic peptide with fixed cysteines and per-residue amino-acid constraints
    "cyclic_peptide": {
        "entities": [
            {
                "protein": {
                    "ids": ["P"],
                    "sequence": "3C6C3",
                    "cyclic": True,
                    "residueConstraints": [
                        {"position": "1..3", "allowed": "AGS"},
                        {"position": "5", "disallowed": "CM"},
                    ],
                }
            },
            {
                "file": {
                    **TARGET_CM,
                    "include": [{"chain": {"id": "A"}}],
                    "bindingTypes": [{"chain": {"id": "A", "binding": "40..45"}}],
                }
            },
        ],
        "constraints": [
            {
                "bond": {
                    "atom1": {"chain": "P", "residue": 4, "atom": "SG"},
                    "atom2": {"chain": "P", "residue": 11, "atom": "SG"},
                }
            }
        ],  # fmt: skip
    },
    # protein-small_molecule: a designed protein around a SMILES ligand and two copies of a CCD ligand; fixed
    # chains given by sequence (binding types are for fixed residues only: DesignInfo.is_valid)
    "small_molecule": {
        "entities": [
            {"protein": {"ids": ["A"], "sequence": "40..60", "symmetricGroup": 1}},
            _p(["T"], "MKTAYIAKQR", bindingTypes={"binding": "2..4", "notBinding": "8"}),
            {"ligand": {"ids": ["L"], "smiles": "N[C@@H](Cc1ccc(O)cc1)C(=O)O"}},
            {"ligand": {"ids": ["M", "N"], "ccd": "SAH"}},
            {"dna": {"ids": ["D"], "sequence": "ACGTN"}},
            {"rna": {"ids": ["R"], "sequence": "ACGUN"}},
        ]
    },
    # constraints: totalLen first (BoltzGen reads constraints[0] only), a disulfide, a covalent ligand on a cysteine
    # of the file (label_seq_id 40)
    "constraints": {
        "entities": [
            {"protein": {"ids": ["S"], "sequence": "5..15C6C3"}},
            {"ligand": {"ids": ["L"], "smiles": "CCO"}},
            {"file": {**TARGET_CM, "include": [{"chain": {"id": "A", "resIndex": "30..60"}}]}},
        ],
        "constraints": [
            {"totalLen": {"min": 50, "max": 52}},
            {
                "bond": {
                    "atom1": {"chain": "S", "residue": 6, "atom": "SG"},
                    "atom2": {"chain": "S", "residue": 13, "atom": "SG"},
                }
            },  # fmt: skip
            {
                "bond": {
                    "atom1": {"chain": "A", "residue": 40, "atom": "SG"},
                    "atom2": {"chain": "L", "residue": 1, "atom": "C1"},
                }
            },  # fmt: skip
        ],
    },
}


def render_case(root: Path, name: str, body: dict, pdb: Path) -> dict:
    """`body` through the operator: validated, rendered, serialised as the campaign ConfigMap holds it, under the
    name the worker gives it; the structure files copied to where the rendered `path:` entries point."""
    spec = DesignSpec.model_validate(body)
    doc, refs = render_design_spec(spec)
    case = root / name
    inputs = case / "inputs"
    inputs.mkdir(parents=True)
    for directory in {posixpath.dirname(ref.path) for ref in refs}:
        doc = relocate(doc, directory, str(inputs))
    for ref in refs:
        source = ref.key if ref.source == "configMap" else ref.uri
        shutil.copyfile(pdb if source.endswith(".pdb") else TARGET, inputs / ref.file_name)
    path = case / SPEC_FILE
    path.write_text(yaml.safe_dump(doc, sort_keys=False))  # as builders/campaign.build_configmap writes it
    return {"spec": spec, "doc": doc, "refs": refs, "path": path}


@pytest.fixture(scope="module")
def pdb_target(tmp_path_factory, boltzgen_side) -> Path:
    """The fixture as a PDB file (written by gemmi in the boltzgen venv)."""
    pdb = tmp_path_factory.mktemp("boltzgen-pdb") / "3ch4.pdb"
    boltzgen_side("pdb", TARGET, pdb)
    return pdb


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, pdb_target) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("boltzgen-specs")
    return {name: render_case(root, name, body, pdb_target) for name, body in CASES.items()}


@pytest.fixture(scope="module")
def parsed(rendered, boltzgen_side, boltzgen_mols, tmp_path_factory) -> dict[str, dict]:
    """boltzgen's answer for every case (one boltzgen_side call: torch imports once)."""
    work = tmp_path_factory.mktemp("boltzgen-work")
    answers = boltzgen_side("parse", boltzgen_mols, work, *(case["path"] for case in rendered.values()))
    return {name: answers[str(case["path"])] for name, case in rendered.items()}


def accepted(parsed: dict, name: str, rendered: dict) -> dict:
    answer = parsed[name]
    if "error" in answer:
        error = answer["error"]
        raise AssertionError(
            f"boltzgen 0.3.2 rejected the rendered spec {name!r} in its {error['stage']} stage: "
            f"{error['type']}: {error['message']}\n--- rendered YAML ---\n{rendered[name]['path'].read_text()}"
            f"--- traceback ---\n{error['traceback']}"
        )
    return answer


def chains(answer: dict) -> dict[str, dict]:
    return {c["name"]: c for c in answer["parser"]["chains"]}


def spans(text: str) -> set[int]:
    numbers: set[int] = set()
    for item in text.split(","):
        low, _, high = item.partition("..")
        numbers.update(range(int(low), int(high or low) + 1))
    return numbers


RESOLVED = set(range(1, TARGET_LENGTH + 1)) - set(TARGET_UNRESOLVED_TAIL)  # boltzgen drops unresolved ends only


# ---------------------------------------------------------------------------------------------- tests


def test_every_case_is_accepted_by_all_three_readers(parsed, rendered):
    """The parser, `boltzgen check` (writes its CIF) and the design step's data module all take every spec."""
    for name in CASES:
        answer = accepted(parsed, name, rendered)
        assert answer["check"]["cif_bytes"] > 0, name
        assert answer["data_module"]["tokens"] > 0, name
        assert answer["data_module"]["id"] == Path(SPEC_FILE).stem, name


def test_spec_file_name_is_one_boltzgen_accepts():
    """The design step refuses names ending in _<digits>.yaml or containing _native (data_from_yaml.py), and the
    parser reads only the .yaml suffix."""
    import re

    assert SPEC_FILE.endswith(".yaml")
    assert not re.search(r"_\d+\.yaml$", SPEC_FILE) and "_native" not in SPEC_FILE


def test_binder_against_file_target(parsed, rendered):
    answer = accepted(parsed, "binder", rendered)
    by_name = chains(answer)
    assert list(by_name) == ["G", "A"]
    binder, target = by_name["G"], by_name["A"]
    assert binder["type"] == "PROTEIN" and 60 <= binder["residues"] <= 80
    assert binder["designed"] == binder["residues"]
    assert binder["secondary_structure"] == {"HELIX": list(range(1, 11))}

    # chain A is label_asym_id A (author chain B); residues are label_seq_id
    assert target["type"] == "PROTEIN" and target["designed"] == 0 and target["symmetric_group"] == 2
    kept = (spans("1..150") - spans("100..110")) & RESOLVED
    assert set(target["numbers"]) == kept
    assert [n for n, present in zip(target["numbers"], target["present"]) if not present] == list(TARGET_GAP)
    assert set(target["binding_numbers"]) == spans("40..45,52")
    assert set(target["not_binding_numbers"]) == spans("1..10")
    hidden = set(target["structure_groups"]["0"])
    assert hidden == spans("120..150") & kept
    assert set(target["structure_groups"]["1"]) == kept - hidden
    assert answer["data_module"]["binding_tokens"] == len(spans("40..45,52"))
    assert answer["data_module"]["design_tokens"] == binder["residues"]


def test_binder_s3_path_and_proximity(parsed, rendered):
    case = rendered["binder_s3_proximity"]
    assert [ref.source for ref in case["refs"]] == ["s3"]
    answer = accepted(parsed, "binder_s3_proximity", rendered)
    by_name = chains(answer)
    near = by_name["A"]
    assert 0 < near["residues"] < 50 and near["numbers"] == list(range(1, near["residues"] + 1))
    assert "CYS" in near["residue_names"]  # label_seq_id 40
    assert by_name["G"]["designed"] == 12


def test_redesign_of_file_residues(parsed, rendered):
    answer = accepted(parsed, "redesign", rendered)
    target = chains(answer)["A"]
    inserted = target["residues"] - len(RESOLVED)
    assert 3 <= inserted <= 5
    assert target["designed"] == len(spans("20..25") - {22}) + inserted
    assert {20, 21, 23, 24, 25} <= set(target["designed_numbers"]) and 22 not in target["designed_numbers"]
    assert target["secondary_structure"]["HELIX"] == [20, 21]
    assert target["secondary_structure"]["LOOP"] == [23, 24, 25]


def test_pdb_target_uses_author_chains(parsed, rendered):
    case = rendered["binder_pdb"]
    assert case["doc"]["entities"][1]["file"]["path"].endswith(".pdb")
    answer = accepted(parsed, "binder_pdb", rendered)
    by_name = chains(answer)
    assert by_name["G"]["designed"] == 20
    assert by_name["B"]["type"] == "PROTEIN" and by_name["B"]["designed"] == 0


def test_cyclic_peptide_with_residue_constraints(parsed, rendered):
    answer = accepted(parsed, "cyclic_peptide", rendered)
    peptide = chains(answer)["P"]
    assert peptide["residues"] == 14 and peptide["cyclic_period"] == 14
    assert peptide["designed_numbers"] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 12, 13, 14]
    assert [peptide["residue_names"][i - 1] for i in (4, 11)] == ["CYS", "CYS"]
    assert set(chains(answer)["A"]["binding_numbers"]) == spans("40..45")
    allowed = {number: set(letters) for number, letters in peptide["residue_constraints"].items()}
    assert allowed == {"1": set("AGS"), "2": set("AGS"), "3": set("AGS"), "5": set("ADEFGHIKLNPQRSTVWY")}
    bonds = answer["parser"]["inter_residue_bonds"]
    assert [["P", 1, "N"], ["P", 14, "C"]] in bonds  # the head-to-tail bond of `cyclic`
    assert [["P", 4, "SG"], ["P", 11, "SG"]] in bonds  # the disulfide constraint
    assert answer["data_module"]["cyclic_tokens"] == 14


def test_small_molecule_entities(parsed, rendered):
    answer = accepted(parsed, "small_molecule", rendered)
    by_name = chains(answer)
    assert list(by_name) == ["A", "T", "L", "M", "N", "D", "R"]
    assert by_name["T"]["designed"] == 0 and by_name["T"]["residue_names"][:2] == ["MET", "LYS"]
    assert by_name["T"]["binding_numbers"] == [2, 3, 4] and by_name["T"]["not_binding_numbers"] == [8]
    assert 40 <= by_name["A"]["designed"] <= 60 and by_name["A"]["symmetric_group"] == 1
    assert by_name["L"]["type"] == "NONPOLYMER" and by_name["L"]["residue_names"] == ["LIG1"]
    assert by_name["M"]["residue_names"] == by_name["N"]["residue_names"] == ["SAH"]
    assert by_name["D"]["type"] == "DNA" and by_name["D"]["residue_names"] == ["DA", "DC", "DG", "DT", "DN"]
    assert by_name["R"]["type"] == "RNA" and by_name["R"]["residue_names"] == ["A", "C", "G", "U", "N"]
    assert answer["parser"]["extra_mols"] == ["LIG1"]


def test_total_length_and_bonds(parsed, rendered):
    answer = accepted(parsed, "constraints", rendered)
    by_name = chains(answer)
    assert 50 <= answer["parser"]["residues"] <= 52  # everything counts: designed, ligand, target residues
    binder = by_name["S"]
    first_cys = binder["residues"] - 3 - 6 - 1  # 5..15 designed, C, 6 designed, C, 3 designed
    assert binder["residue_names"][first_cys - 1] == "CYS" and binder["residue_names"][first_cys + 6] == "CYS"
    bonds = answer["parser"]["inter_residue_bonds"]
    # bond residues are given as if the shortest length were sampled; boltzgen maps them onto the sampled chain
    assert [["S", first_cys, "SG"], ["S", first_cys + 7, "SG"]] in bonds
    assert [["A", 40, "SG"], ["L", 1, "C1"]] in bonds
    assert chains(answer)["A"]["residue_names"][chains(answer)["A"]["numbers"].index(40)] == "CYS"


# ---------------------------------------------------------------------------------------------- admission gaps
# Specs the operator admits (DesignSpec validates them, the renderer renders them) that boltzgen 0.3.2 refuses
# when the design step starts, or never finishes reading. Each entry: the designSpec, the message boltzgen
# answers, and whether the operator could refuse it from the spec alone (`static`) or only with the
# structure file in hand. test_boltzgen_answers_the_gap keeps this list true (boltzgen really answers that);
# test_operator_refuses_at_admission is an expected failure for every static gap until the CRD refuses it (then
# its strict xfail turns into a failure: remove the entry, or move it to the unit tests).

MALFORMED_ALL = "Malformed residue range specification 'all' in 'all'."
BINDING_ON_DESIGNED = "There were residues that have a binding type specified and are set to be designed"
SS_NOT_DESIGNED = "There were residues that have a secondary structure type specified but are not set to be designed"
BINDER = _p(["G"], "10")
A = {"id": "A"}

GAPS: dict[str, tuple[dict, str, bool]] = {}


def gap(name: str, expected: str, static: bool, *entities: dict, constraints: list | None = None) -> None:
    spec: dict = {"entities": list(entities)}
    if constraints:
        spec["constraints"] = constraints
    GAPS[name] = (spec, expected, static)


# `all` is a ResidueRange everywhere in the CRD; boltzgen takes it only for a file's bindingTypes and
# secondaryStructure (and as a structureGroups id): parse_range() refuses it everywhere else
gap("all_in_include_res_index", MALFORMED_ALL, True, BINDER, _f(include=[{"chain": {**A, "resIndex": "all"}}]))
gap("all_in_design_res_index", MALFORMED_ALL, True, _f(design=[{"chain": {**A, "resIndex": "all"}}]))
gap("all_in_structure_group_res_index", MALFORMED_ALL, True,
    BINDER, _f(structureGroups=[{"group": {**A, "resIndex": "all", "visibility": 0}}]))  # fmt: skip
gap("all_in_protein_binding_types", MALFORMED_ALL, True,
    _p(["T"], "MKTAYIAKQR", bindingTypes={"binding": "all"}), BINDER)  # fmt: skip
gap("all_in_protein_secondary_structure", MALFORMED_ALL, True, _p(["G"], "10", secondaryStructure={"helix": "all"}))
gap("all_in_residue_constraint_position", MALFORMED_ALL, True,
    _p(["G"], "10", residueConstraints=[{"position": "all", "allowed": "AG"}]))  # fmt: skip
gap("all_in_insertion_num_residues", MALFORMED_ALL, True,
    _f(designInsertions=[{"insertion": {**A, "resIndex": 30, "numResidues": "all"}}]))  # fmt: skip
# numResidues N.. has no end: parse_range asserts one
gap("open_insertion_num_residues", "AssertionError", True,
    _f(designInsertions=[{"insertion": {**A, "resIndex": 30, "numResidues": "5.."}}]))  # fmt: skip
# DesignInfo.is_valid: binding types only on residues not designed, secondary structure only on designed ones
gap("binding_types_on_designed_protein", BINDING_ON_DESIGNED, True,
    _p(["G"], "10", bindingTypes={"binding": "1..3"}), _f(include=[{"chain": A}]))  # fmt: skip
gap("binding_types_on_redesigned_file_residues", BINDING_ON_DESIGNED, True,
    _f(design=[{"chain": {**A, "resIndex": "10..20"}}], bindingTypes=[{"chain": {**A, "binding": "15"}}]))  # fmt: skip
gap("secondary_structure_on_fixed_protein", SS_NOT_DESIGNED, True,
    _p(["T"], "MKTAYIAKQR", secondaryStructure={"helix": "1..3"}), BINDER)  # fmt: skip
gap("secondary_structure_on_file_residues_not_redesigned", SS_NOT_DESIGNED, True,
    BINDER, _f(secondaryStructure=[{"chain": {**A, "helix": "1..5"}}]))  # fmt: skip
gap("residue_constraints_leaving_nothing", "some designed positions have all amino acids disallowed", True,
    _p(["G"], "10", residueConstraints=[{"position": "1", "allowed": "A"}, {"position": "1", "allowed": "G"}]))  # fmt: skip
# `cyclic` closes the chain with atoms named N and C: nucleotides have neither
gap("cyclic_dna", "KeyError: ('D', 0, 'N')", True, BINDER, {"dna": {"ids": ["D"], "sequence": "ACGT", "cyclic": True}})
gap("cyclic_rna", "KeyError: ('R', 0, 'N')", True, BINDER, {"rna": {"ids": ["R"], "sequence": "ACGU", "cyclic": True}})
# totalLen counts every residue (designed, fixed, ligands, the target's): unreachable bounds loop forever
gap("total_len_unreachable", "SpecTimeout", True,
    _p(["G"], "10..20"), constraints=[{"totalLen": {"min": 30, "max": 40}}])  # fmt: skip
# reversed ranges
gap("reversed_design_length", "low >= high", True, _p(["G"], "10..5"))
gap("reversed_res_index", "need at least one array to concatenate", True,
    BINDER, _f(include=[{"chain": {**A, "resIndex": "50..40"}}]))  # fmt: skip
# a protein of zero designed residues parses, then breaks the data module
gap("zero_length_protein", "arrays used as indices must be of integer (or boolean) type", True, _p(["G"], "0"))
# bonds to chains or residues that do not exist: boltzgen's own check builds its message and never raises it
# (schema.py), so what fails later is an indexing error
gap("bond_to_unknown_chain", "can only convert an array of size 1 to a Python scalar", True,
    _p(["G"], "C10C"), constraints=[_bond(("G", 1, "SG"), ("Z", 1, "SG"))])  # fmt: skip
gap("bond_beyond_chain_end", "IndexError", True,
    _p(["G"], "C10C"), constraints=[_bond(("G", 1, "SG"), ("G", 30, "SG"))])  # fmt: skip
# only with the structure in hand: chain ids are label_asym_id (3CH4's author chain B is label A), ranges label_seq_id
gap("include_author_chain_id", "Specified chain id Q not in file", False, BINDER, _f(include=[{"chain": {"id": "Q"}}]))
gap("res_index_beyond_chain", "is higher than the length of the chain", False,
    BINDER, _f(include=[{"chain": {**A, "resIndex": "150..300"}}]))  # fmt: skip
# includeProximity narrows include (included AND near), it does not add to it: nothing is left here
gap("proximity_outside_include", "need at least one array to concatenate", False, BINDER,
    _f(include=[{"chain": {**A, "resIndex": "1..5"}}], includeProximity=[{"chain": {**A, "resIndex": "150", "radius": 5}}]))  # fmt: skip
# useAssembly: boltzgen drops waters before expanding the assembly; gemmi >= 0.7 (0.7.5 in the worker image) then
# refuses the assembly, which still names the water subchain (gemmi 0.6.x expands it, naming the chains A1, B1...)
gap("use_assembly_with_waters", "no subchain F", False, BINDER, _f(useAssembly=True))


def _admitted(body: dict) -> bool:
    try:
        DesignSpec.model_validate(body)
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def gap_answers(tmp_path_factory, pdb_target, boltzgen_side, boltzgen_mols) -> dict[str, tuple[dict, dict]]:
    root = tmp_path_factory.mktemp("boltzgen-gaps")
    cases = {name: render_case(root, name, body, pdb_target) for name, (body, _, _) in GAPS.items() if _admitted(body)}
    work = tmp_path_factory.mktemp("boltzgen-gaps-work")
    # a short deadline: one of them (total_len_unreachable) never returns
    answers = boltzgen_side("parse", boltzgen_mols, work, *(c["path"] for c in cases.values()),
                            env={"BOLTZGEN_SIDE_TIMEOUT": "15"})  # fmt: skip
    return {name: (case, answers[str(case["path"])]) for name, case in cases.items()}


@pytest.mark.parametrize("name", list(GAPS))
def test_boltzgen_answers_the_gap(name, gap_answers):
    if name not in gap_answers:
        pytest.skip(f"the operator refuses {name!r} at admission now: the gap is closed")
    case, answer = gap_answers[name]
    expected = GAPS[name][1]
    assert "error" in answer, f"boltzgen now accepts {name!r}: drop it from GAPS\n{case['path'].read_text()}"
    error = answer["error"]
    said = f"{error['type']}: {error['message']}"
    assert expected in said, f"{name}: boltzgen answered {said!r}, expected {expected!r}"


# Gaps the operator could close from the spec alone but has not yet (rules on which file residues are designed, bonds
# to chains of a structure file it cannot read, totalLen against lengths it does not know): strict xfail, so closing
# one fails here until it moves out of this set.
OPEN_STATIC_GAPS = {
    "binding_types_on_redesigned_file_residues", "secondary_structure_on_file_residues_not_redesigned",
    "residue_constraints_leaving_nothing", "total_len_unreachable", "bond_to_unknown_chain", "bond_beyond_chain_end",
}  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=f"admission gap, boltzgen answers: {expected}"))
        if name in OPEN_STATIC_GAPS
        else name
        for name, (_, expected, static) in GAPS.items()
        if static
    ],
)
def test_operator_refuses_at_admission(name):
    """A spec boltzgen refuses should be refused by the CRD, not discovered on a GPU (needs no boltzgen venv)."""
    with pytest.raises(ValueError):
        DesignSpec.model_validate(GAPS[name][0])


def test_pins_match_the_worker_image():
    """The fidelity venv reads specs with the packages the worker-boltzgen image has; only the torch stack (linked
    from the boltz venv) and the GPU kernels (not installed) may differ."""

    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, version = line.partition("==")
                out[name.lower().replace("_", "-")] = version
        return out

    ours = pins(REPO / "hack" / "boltzgen-venv.constraints.txt")
    image = pins(REPO / "worker" / "constraints-boltzgen.txt")
    torch_stack = ("torch", "triton", "nvidia-", "cuda-", "cuequivariance")
    differ = {
        name: (ours[name], image[name])
        for name in ours.keys() & image.keys()
        if ours[name] != image[name] and not name.startswith(torch_stack)
    }
    assert not differ, f"hack/boltzgen-venv.constraints.txt drifted from the image (--refreeze it): {differ}"
    assert ours["boltzgen"] == BOLTZGEN_VERSION

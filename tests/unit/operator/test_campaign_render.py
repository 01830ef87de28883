"""Rendering a BoltzGenCampaign designSpec (camelCase, files by reference) into BoltzGen's own design-spec YAML
(snake_case, `id`, `path:`, bond atoms as lists), and the list of files the Job must put where `path:` says.

The specs below are BoltzGen's own examples (boltzgen/example/...) written the CRD's way; the expected dicts are
those examples as BoltzGen spells them, with `path:` pointing where the Job puts the file."""

from __future__ import annotations

import pytest
import yaml

from boltz_operator.api.campaign import BoltzGenCampaign
from boltz_operator.api.design_spec import DesignSpec
from boltz_operator.builders.campaign import SPEC_FILE
from boltz_operator.render import DEFAULT_DOWNLOADS_DIR, DEFAULT_INPUTS_DIR, InputFileRef, render_design_spec
from boltz_operator.render.boltzgen_yaml import structure_file_name

INPUTS = "/etc/boltz-run/inputs"  # the run-config volume's inputs/ (ConfigMap keys projected there)
DOWNLOADS = "/work/inputs"  # where the worker downloads S3 objects
TYROSINE = "N[C@@H](Cc1ccc(O)cc1)C(=O)O"


def render(spec: dict):
    return render_design_spec(DesignSpec.model_validate(spec))


def test_the_default_directories_are_the_pod_paths():
    assert (DEFAULT_INPUTS_DIR, DEFAULT_DOWNLOADS_DIR) == (INPUTS, DOWNLOADS)


def test_binder_against_a_configmap_target_with_binding_site_and_structure_groups():
    # boltzgen example/cylcic_against_kras_with_specific_site + hard_targets/*prot.yaml: a binder of 80..140
    # residues against chains A and C of a file, binding given residues of A, C not to be bound.
    doc, files = render({
        "entities": [
            {"protein": {"ids": ["C"], "sequence": "80..140"}},
            {"file": {
                "configMapKeyRef": {"name": "kras-target", "key": "8jjs.cif"},
                "include": [{"chain": {"id": "A"}}, {"chain": {"id": "C"}}],
                "bindingTypes": [{"chain": {"id": "A", "binding": "12,14,61,63,73..77"}},
                                 {"chain": {"id": "C", "notBinding": "all"}}],
                "structureGroups": [{"group": {"id": "A", "visibility": 1}},
                                    {"group": {"id": "A", "visibility": 0, "resIndex": 13}},
                                    {"group": {"id": "all", "visibility": 2}}],
            }},
        ]
    })  # fmt: skip
    assert doc == {
        "entities": [
            {"protein": {"id": "C", "sequence": "80..140"}},
            {"file": {
                "path": f"{INPUTS}/target-1.cif",
                "include": [{"chain": {"id": "A"}}, {"chain": {"id": "C"}}],
                "binding_types": [{"chain": {"id": "A", "binding": "12,14,61,63,73..77"}},
                                  {"chain": {"id": "C", "not_binding": "all"}}],
                "structure_groups": [{"group": {"id": "A", "visibility": 1}},
                                     {"group": {"id": "A", "visibility": 0, "res_index": "13"}},
                                     {"group": {"id": "all", "visibility": 2}}],
            }},
        ]
    }  # fmt: skip
    assert files == [
        InputFileRef(source="configMap", path=f"{INPUTS}/target-1.cif", name="kras-target", key="8jjs.cif")
    ]
    assert files[0].file_name == "target-1.cif"


def test_cyclotide_from_s3_with_disulfide_bonds():
    # boltzgen example/cyclotide/3ivq.yaml (structure_groups: "all" is the default, so it is left out).
    doc, files = render({
        "entities": [
            {"protein": {"ids": ["B"], "sequence": "3C8C6C5C3C1C2", "cyclic": True}},
            {"file": {"s3": {"uri": "s3://targets/cyclotide/3IVQ.cif"}, "include": [{"chain": {"id": "A"}}]}},
        ],
        "constraints": [
            {"bond": {"atom1": {"chain": "B", "residue": 4, "atom": "SG"}, "atom2": {"chain": "B", "residue": 26, "atom": "SG"}}},
            {"bond": {"atom1": {"chain": "B", "residue": 13, "atom": "SG"}, "atom2": {"chain": "B", "residue": 30, "atom": "SG"}}},
        ],
    })  # fmt: skip
    assert doc == {
        "entities": [
            {"protein": {"id": "B", "sequence": "3C8C6C5C3C1C2", "cyclic": True}},
            {"file": {"path": f"{DOWNLOADS}/target-1.cif", "include": [{"chain": {"id": "A"}}]}},
        ],
        "constraints": [
            {"bond": {"atom1": ["B", 4, "SG"], "atom2": ["B", 26, "SG"]}},
            {"bond": {"atom1": ["B", 13, "SG"], "atom2": ["B", 30, "SG"]}},
        ],
    }
    assert files == [InputFileRef(source="s3", path=f"{DOWNLOADS}/target-1.cif", uri="s3://targets/cyclotide/3IVQ.cif")]
    download = files[0].s3_download("http://s3:8333", "eu-1")
    assert (download.uri, download.dest, download.endpoint_url, download.region) == (
        "s3://targets/cyclotide/3IVQ.cif",
        f"{DOWNLOADS}/target-1.cif",
        "http://s3:8333",
        "eu-1",
    )


def test_protein_small_molecule_with_smiles_and_ccd_ligands():
    # boltzgen example/protein_binding_small_molecule/chorismite.yaml plus the showcase's SMILES ligand with two copies.
    doc, files = render(
        {
            "entities": [
                {"protein": {"ids": ["A"], "sequence": "140..180"}},
                {"ligand": {"ids": ["B"], "ccd": "TSA"}},
                {"ligand": {"ids": ["E", "F"], "smiles": TYROSINE}},
            ]
        }
    )
    assert doc == {
        "entities": [
            {"protein": {"id": "A", "sequence": "140..180"}},
            {"ligand": {"id": "B", "ccd": "TSA"}},
            {"ligand": {"id": ["E", "F"], "smiles": TYROSINE}},
        ]
    }
    assert files == [] and "constraints" not in doc


def test_nanobody_scaffold_redesign_with_insertions_exclusions_and_reindexing():
    # boltzgen example/nanobody_scaffolds/7eow.yaml as a file entity, plus the showcase's other file selections.
    doc, files = render({
        "entities": [
            {"file": {
                "configMapKeyRef": {"name": "scaffolds", "key": "7eow.CIF"},
                "include": [{"chain": {"id": "B", "symmetricGroup": 1}}],
                "includeProximity": [{"chain": {"id": "B", "resIndex": "10..16", "radius": 35}}],
                "design": [{"chain": {"id": "B", "resIndex": "26..34,52..59,98..118"}}],
                "notDesign": [{"chain": {"id": "B", "resIndex": "..4"}}],
                "structureGroups": [{"group": {"id": "B", "visibility": 2}},
                                    {"group": {"id": "B", "visibility": 0, "resIndex": "26..34,52..59,98..118"}}],
                "exclude": [{"chain": {"id": "B", "resIndex": "26..28"}}, {"chain": {"id": "B", "resIndex": 52}}],
                "designInsertions": [{"insertion": {"id": "B", "resIndex": 26, "numResidues": "1..5"}},
                                     {"insertion": {"id": "B", "resIndex": 98, "numResidues": 14}}],
                "secondaryStructure": [{"chain": {"id": "B", "loop": 1, "helix": "2..3", "sheet": "4.."}}],
                "resetResIndex": [{"chain": {"id": "B"}}],
                "useAssembly": True,
            }},
        ],
        "constraints": [{"totalLen": {"min": 110, "max": 130}}],
    })  # fmt: skip
    assert doc == {
        "entities": [
            {"file": {
                "path": f"{INPUTS}/target-0.cif",
                "include": [{"chain": {"id": "B", "symmetric_group": 1}}],
                "include_proximity": [{"chain": {"id": "B", "res_index": "10..16", "radius": 35.0}}],
                "design": [{"chain": {"id": "B", "res_index": "26..34,52..59,98..118"}}],
                "not_design": [{"chain": {"id": "B", "res_index": "..4"}}],
                "structure_groups": [{"group": {"id": "B", "visibility": 2}},
                                     {"group": {"id": "B", "visibility": 0, "res_index": "26..34,52..59,98..118"}}],
                "exclude": [{"chain": {"id": "B", "res_index": "26..28"}}, {"chain": {"id": "B", "res_index": "52"}}],
                "design_insertions": [{"insertion": {"id": "B", "res_index": 26, "num_residues": "1..5"}},
                                      {"insertion": {"id": "B", "res_index": 98, "num_residues": "14"}}],
                "secondary_structure": [{"chain": {"id": "B", "loop": "1", "helix": "2..3", "sheet": "4.."}}],
                "reset_res_index": [{"chain": {"id": "B"}}],
                "use_assembly": True,
            }},
        ],
        "constraints": [{"total_len": {"min": 110, "max": 130}}],
    }  # fmt: skip
    # The file name comes from the entity's position and the key's extension (lower-cased), never from the key.
    assert files == [InputFileRef(source="configMap", path=f"{INPUTS}/target-0.cif", name="scaffolds", key="7eow.CIF")]


def test_designed_protein_options_dna_rna_and_several_chain_ids():
    doc, _ = render({
        "entities": [
            {"protein": {"ids": ["G", "H"], "sequence": "15..20AAAAAAVTTTT18PPP", "symmetricGroup": 2,
                         "bindingTypes": {"binding": "5..7,13", "notBinding": 9},
                         "secondaryStructure": {"helix": "1..10", "loop": "11.."},
                         "residueConstraints": [{"position": "1..5", "allowed": "AGS"}, {"position": 8, "disallowed": "CM"}]}},
            {"protein": {"ids": ["A"], "sequence": "MKTAYIAKQR", "cyclic": False}},
            {"dna": {"ids": ["D"], "sequence": "ACGTN"}},
            {"rna": {"ids": ["R1", "R2"], "sequence": "ACGU"}},
        ]
    })  # fmt: skip
    assert doc == {
        "entities": [
            {"protein": {"id": ["G", "H"], "sequence": "15..20AAAAAAVTTTT18PPP", "symmetric_group": 2,
                         "binding_types": {"binding": "5..7,13", "not_binding": "9"},
                         "secondary_structure": {"helix": "1..10", "loop": "11.."},
                         "residue_constraints": [{"position": "1..5", "allowed": "AGS"},
                                                 {"position": "8", "disallowed": "CM"}]}},
            {"protein": {"id": "A", "sequence": "MKTAYIAKQR", "cyclic": False}},
            {"dna": {"id": "D", "sequence": "ACGTN"}},
            {"rna": {"id": ["R1", "R2"], "sequence": "ACGU"}},
        ]
    }  # fmt: skip


def test_id_is_the_first_key_of_each_entity_as_in_boltzgens_examples():
    doc, _ = render(
        {
            "entities": [
                {"protein": {"sequence": "80..140", "ids": ["C"], "cyclic": True}},
                {"file": {"include": [{"chain": {"id": "A"}}], "s3": {"uri": "s3://bucket/t.pdb"}}},
            ]
        }
    )
    text = yaml.safe_dump(doc, sort_keys=False)  # as the campaign ConfigMap stores it
    assert text.splitlines()[:3] == ["entities:", "- protein:", "    id: C"]
    assert list(doc["entities"][1]["file"])[0] == "path"


def test_each_file_entity_gets_a_name_of_its_own_by_position_and_extension():
    spec = DesignSpec.model_validate({
        "entities": [
            {"file": {"configMapKeyRef": {"name": "t", "key": "same.cif"}}},
            {"protein": {"ids": ["Z"], "sequence": "50"}},
            {"file": {"configMapKeyRef": {"name": "t", "key": "same.cif"}}},
            {"file": {"s3": {"uri": "s3://bucket/dir/target.PDB"}}},
        ]
    })  # fmt: skip
    doc, files = render_design_spec(spec, inputs_dir="/in", downloads_dir="/dl")
    paths = [e["file"]["path"] for e in doc["entities"] if "file" in e]
    assert paths == ["/in/target-0.cif", "/in/target-2.cif", "/dl/target-3.pdb"]
    assert [f.path for f in files] == paths  # in entity order
    assert [(f.source, f.name, f.key, f.uri) for f in files] == [
        ("configMap", "t", "same.cif", None),
        ("configMap", "t", "same.cif", None),
        ("s3", None, None, "s3://bucket/dir/target.PDB"),
    ]
    assert len({f.file_name for f in files}) == 3
    assert structure_file_name(7, spec.entities[3].file) == "target-7.pdb"


def test_rendering_is_deterministic_and_leaves_out_unset_fields():
    spec = DesignSpec.model_validate(
        {"entities": [{"protein": {"ids": ["B"], "sequence": "12"}}, {"file": {"s3": {"uri": "s3://bucket/x.cif"}}}]}
    )
    first, second = render_design_spec(spec), render_design_spec(spec)
    assert first == second
    assert first[0] == {
        "entities": [{"protein": {"id": "B", "sequence": "12"}}, {"file": {"path": f"{DOWNLOADS}/target-1.cif"}}]
    }
    assert "None" not in yaml.safe_dump(first[0]) and "null" not in yaml.safe_dump(first[0])


@pytest.mark.parametrize("example", ["campaign.yaml", "campaign-small-molecule.yaml"])
def test_the_shipped_examples_render(example):
    from pathlib import Path

    body = yaml.safe_load((Path(__file__).resolve().parents[3] / "examples" / example).read_text())
    doc, files = render_design_spec(BoltzGenCampaign.model_validate(body).spec.design_spec)
    if example == "campaign.yaml":
        assert doc == {
            "entities": [
                {"protein": {"id": "B", "sequence": "80..140"}},
                {"file": {"path": f"{INPUTS}/target-1.cif", "include": [{"chain": {"id": "A"}}]}},
            ]
        }
        assert files == [
            InputFileRef(source="configMap", path=f"{INPUTS}/target-1.cif", name="pdl1-target", key="6m1u.cif")
        ]
    else:
        assert doc == {
            "entities": [{"protein": {"id": "A", "sequence": "140..180"}}, {"ligand": {"id": "B", "ccd": "SAH"}}]
        }
        assert files == []
    assert SPEC_FILE.endswith(".yaml")

"""Rendering a BoltzPrediction spec into Boltz's YAML input, the files it needs, and the predict options."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from boltz_operator.api import BoltzPrediction, BoltzPredictionSpec
from boltz_operator.render import InputFileRef, predict_options, render_boltz_input, validate_prediction

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
ERLOTINIB = "COCCOC1=C(C=C2C(=C1)C(=NC=N2)NC3=CC=CC(=C3)C#C)OCCOC"
PROTEIN = "GEAPNQALLRILKETEFKKIKVLGSGAFGTVYKGLWIPEGEKVKIPVAIKELREATSPKANK"  # EGFR 696-755


def spec_of(**fields) -> BoltzPredictionSpec:
    return BoltzPredictionSpec.model_validate(fields)


def protein(ids, sequence=PROTEIN, **extra) -> dict:
    return {"protein": {"ids": ids, "sequence": sequence, **extra}}


def ligand(ids, **extra) -> dict:
    return {"ligand": {"ids": ids, **extra}}


def test_example_protein_ligand_affinity():
    body = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())
    spec = BoltzPrediction.model_validate(body).spec
    doc, files = render_boltz_input(spec)
    sequence = body["spec"]["sequences"][0]["protein"]["sequence"]
    assert doc == {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": sequence, "msa": "empty"}},
            {"ligand": {"id": "B", "smiles": ERLOTINIB}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    assert files == []
    assert validate_prediction(spec) == []
    options = predict_options(spec)
    assert options.diffusion_samples == 1
    assert options.use_msa_server is False
    assert options.diffusion_samples_affinity == 5


def test_multiple_ids_modifications_cyclic_and_ccd():
    spec = spec_of(
        sequences=[
            protein(["A", "B"], msa={"empty": True}, modifications=[{"position": 3, "ccd": "SEP"}]),
            {"rna": {"ids": ["R"], "sequence": "ACGUACGU", "cyclic": True}},
            {"dna": {"ids": ["D1", "D2"], "sequence": "ACGT"}},
            ligand(["L"], ccd="SAH"),
        ]
    )
    doc, _ = render_boltz_input(spec)
    assert doc["sequences"] == [
        {
            "protein": {
                "id": ["A", "B"],
                "sequence": PROTEIN,
                "msa": "empty",
                "modifications": [{"position": 3, "ccd": "SEP"}],
            }
        },
        {"rna": {"id": "R", "sequence": "ACGUACGU", "cyclic": True}},
        {"dna": {"id": ["D1", "D2"], "sequence": "ACGT"}},
        {"ligand": {"id": "L", "ccd": "SAH"}},
    ]
    assert "constraints" not in doc and "templates" not in doc and "properties" not in doc
    assert validate_prediction(spec) == []


def test_msa_files_from_config_maps_secrets_and_s3():
    spec = spec_of(
        sequences=[
            protein(["A", "B"], msa={"configMapKeyRef": {"name": "msas", "key": "egfr.a3m"}}),
            protein(["C"], sequence="GSHMKK", msa={"secretKeyRef": {"name": "private-msas", "key": "pairing.CSV"}}),
            protein(["D"], sequence="MDDKKV", msa={"s3": {"uri": "s3://msa-bucket/runs/d.a3m"}}),
            protein(["E"], sequence="MEEKKV", msa={"empty": True}),
        ]
    )
    doc, files = render_boltz_input(spec)
    msas = [item["protein"].get("msa") for item in doc["sequences"]]
    assert msas == [
        "/etc/boltz-run/inputs/msa-A.a3m",
        "/etc/boltz-run/inputs/msa-C.csv",
        "/work/inputs/msa-D.a3m",
        "empty",
    ]
    assert files == [
        InputFileRef(source="configMap", path="/etc/boltz-run/inputs/msa-A.a3m", name="msas", key="egfr.a3m"),
        InputFileRef(source="secret", path="/etc/boltz-run/inputs/msa-C.csv", name="private-msas", key="pairing.CSV"),
        InputFileRef(source="s3", path="/work/inputs/msa-D.a3m", uri="s3://msa-bucket/runs/d.a3m"),
    ]
    assert [f.file_name for f in files] == ["msa-A.a3m", "msa-C.csv", "msa-D.a3m"]
    download = files[2].s3_download(endpoint_url="http://seaweed:8333", region="us-east-1")
    assert (download.uri, download.dest, download.endpoint_url) == (
        "s3://msa-bucket/runs/d.a3m",
        "/work/inputs/msa-D.a3m",
        "http://seaweed:8333",
    )
    with pytest.raises(ValueError):
        files[0].s3_download()
    assert validate_prediction(spec) == []
    assert predict_options(spec).use_msa_server is False


def test_server_msa_is_left_out_and_turns_on_the_msa_server():
    spec = spec_of(
        sequences=[
            protein(["A"]),
            protein(["B"], sequence="GSHMKK", msa={"server": True}),
            ligand(["L"], smiles="CCO"),
        ],
        msaServer={"url": "https://msa.example.org", "pairingStrategy": "complete", "apiKeyHeader": "X-API-Key"},
    )
    doc, files = render_boltz_input(spec)
    assert all("msa" not in item.get("protein", {}) for item in doc["sequences"])
    assert files == []
    options = predict_options(spec)
    assert options.use_msa_server is True
    assert options.msa_server_url == "https://msa.example.org"
    assert options.msa_pairing_strategy == "complete"
    assert options.msa_api_key_header == "X-API-Key"


def test_custom_directories():
    spec = spec_of(
        sequences=[protein(["A"], msa={"configMapKeyRef": {"name": "m", "key": "a.a3m"}})],
        templates=[{"cif": {"s3": {"uri": "s3://templates/1abc.cif"}}}],
    )
    doc, files = render_boltz_input(spec, inputs_dir="/in", downloads_dir="/dl")
    assert doc["sequences"][0]["protein"]["msa"] == "/in/msa-A.a3m"
    assert doc["templates"] == [{"cif": "/dl/template-0.cif"}]
    assert [f.path for f in files] == ["/in/msa-A.a3m", "/dl/template-0.cif"]
    assert validate_prediction(spec, inputs_dir="/in", downloads_dir="/dl") == []


def test_constraints_in_boltz_shape():
    spec = spec_of(
        sequences=[protein(["A"], msa={"empty": True}), ligand(["L"], ccd="ATP")],
        constraints=[
            {
                "bond": {
                    "atom1": {"chain": "A", "residue": 12, "atom": "CD1"},  # residue 12 is a leucine
                    "atom2": {"chain": "L", "residue": 1, "atom": "C1"},
                }
            },
            {
                "pocket": {
                    "binder": "L",
                    "contacts": [{"chain": "A", "residue": 5}, {"chain": "A", "residue": 40}],
                    "maxDistance": 8,
                    "force": True,
                }
            },
            {"contact": {"token1": {"chain": "A", "residue": 7}, "token2": {"chain": "L", "atom": "N1"}}},
        ],
    )
    doc, _ = render_boltz_input(spec)
    assert doc["constraints"] == [
        {"bond": {"atom1": ["A", 12, "CD1"], "atom2": ["L", 1, "C1"]}},
        {"pocket": {"binder": "L", "contacts": [["A", 5], ["A", 40]], "max_distance": 8.0, "force": True}},
        {"contact": {"token1": ["A", 7], "token2": ["L", "N1"], "max_distance": 6.0, "force": False}},
    ]
    assert validate_prediction(spec) == []


def test_templates_with_mapping_and_force():
    spec = spec_of(
        sequences=[protein(["A", "B"], msa={"empty": True})],
        templates=[
            {"cif": {"configMapKeyRef": {"name": "templates", "key": "7xyz.cif"}}},
            {
                "pdb": {"s3": {"uri": "s3://templates/prefix/1abc.pdb"}},
                "chainIds": ["A", "B"],
                "templateIds": ["A1", "B1"],
                "force": True,
                "threshold": 2.5,
            },
        ],
    )
    doc, files = render_boltz_input(spec)
    assert doc["templates"] == [
        {"cif": "/etc/boltz-run/inputs/template-0.cif"},
        {
            "pdb": "/work/inputs/template-1.pdb",
            "chain_id": ["A", "B"],
            "template_id": ["A1", "B1"],
            "force": True,
            "threshold": 2.5,
        },
    ]
    assert files == [
        InputFileRef(source="configMap", path="/etc/boltz-run/inputs/template-0.cif", name="templates", key="7xyz.cif"),
        InputFileRef(source="s3", path="/work/inputs/template-1.pdb", uri="s3://templates/prefix/1abc.pdb"),
    ]
    assert validate_prediction(spec) == []


def test_rendering_is_deterministic():
    body = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())
    spec = BoltzPredictionSpec.model_validate(body["spec"])
    assert render_boltz_input(spec) == render_boltz_input(BoltzPredictionSpec.model_validate(body["spec"]))


def test_predict_options_mapping():
    spec = spec_of(
        sequences=[protein(["A"], msa={"empty": True})],
        options={
            "diffusionSamples": 5,
            "recyclingSteps": 10,
            "samplingSteps": 100,
            "stepScale": 1.2,
            "maxParallelSamples": 2,
            "usePotentials": True,
            "seed": 42,
            "outputFormat": "pdb",
            "affinity": {"samplingSteps": 150, "diffusionSamples": 3, "mwCorrection": True},
            "maxMsaSeqs": 4096,
            "subsampleMsa": True,
            "numSubsampledMsa": 512,
            "useKernels": False,
        },
    )
    o = predict_options(spec)
    assert (o.diffusion_samples, o.recycling_steps, o.sampling_steps, o.step_scale) == (5, 10, 100, 1.2)
    assert (o.max_parallel_samples, o.use_potentials, o.seed, o.output_format) == (2, True, 42, "pdb")
    assert (o.sampling_steps_affinity, o.diffusion_samples_affinity, o.affinity_mw_correction) == (150, 3, True)
    assert (o.max_msa_seqs, o.subsample_msa, o.num_subsampled_msa, o.use_kernels) == (4096, True, 512, False)
    assert (o.use_msa_server, o.msa_server_url, o.msa_pairing_strategy) == (False, None, "greedy")


# ---------------------------------------------------------------------------------------------- invalid inputs
# These pass the pydantic models (the apiserver's CEL rules reject several of them first); the operator must still
# report them, before any Job exists, in words a user can act on.


def errors_for(**fields) -> list[str]:
    return validate_prediction(spec_of(**fields))


def test_affinity_ligand_too_large():
    errors = errors_for(
        sequences=[protein(["A"], msa={"empty": True}), ligand(["B"], smiles="C" * 140)], affinity={"binder": "B"}
    )
    assert len(errors) == 1
    assert "ligand B has 140 heavy atoms" in errors[0] and "at most 128" in errors[0]


def test_msa_key_extension():
    errors = errors_for(sequences=[protein(["A"], msa={"configMapKeyRef": {"name": "msas", "key": "a.txt"}})])
    assert errors == [
        "spec.sequences[0].protein.msa: a.txt must end in .a3m or .csv (Boltz picks the MSA parser by the "
        "extension); rename the key or object"
    ]


def test_template_file_of_the_other_format():
    errors = errors_for(
        sequences=[protein(["A"], msa={"empty": True})],
        templates=[{"cif": {"configMapKeyRef": {"name": "t", "key": "1abc.pdb"}}}],
    )
    assert errors == ["spec.templates[0].cif: 1abc.pdb looks like a PDB file; give it as templates[0].pdb"]


@pytest.mark.parametrize(
    "fields, expected",
    [
        (
            {
                "sequences": [
                    protein(["A"]),
                    protein(["B"], sequence="GSHMKK", msa={"configMapKeyRef": {"name": "m", "key": "b.a3m"}}),
                ]
            },
            "cannot mix MSA files",
        ),
        (
            {"sequences": [protein(["A"], msa={"empty": True}), ligand(["A"], smiles="CCO")]},
            "chain id 'A' is used more than once",
        ),
        (
            {"sequences": [protein(["A"], msa={"empty": True})], "affinity": {"binder": "A"}},
            "affinity is only supported for ligands",
        ),
        (
            {
                "sequences": [protein(["A"], msa={"empty": True}), ligand(["B", "C"], smiles="CCO")],
                "affinity": {"binder": "B"},
            },
            "has several copies",
        ),
        (
            {
                "sequences": [protein(["A"], msa={"empty": True}), ligand(["B"], smiles="CCO")],
                "constraints": [{"pocket": {"binder": "B", "contacts": [{"chain": "A", "residue": 500}]}}],
            },
            "beyond the end of chain A",
        ),
        (
            {
                "sequences": [protein(["A"], msa={"empty": True}), ligand(["B"], smiles="CCO")],
                "constraints": [
                    {"contact": {"token1": {"chain": "Q", "residue": 1}, "token2": {"chain": "B", "atom": "C1"}}}
                ],
            },
            "'Q' is not a chain of the input",
        ),
        (
            {
                "sequences": [protein(["A"], msa={"empty": True}), ligand(["B"], smiles="CCO")],
                "templates": [{"cif": {"configMapKeyRef": {"name": "t", "key": "t.cif"}}, "chainIds": ["B"]}],
            },
            "'B' is not a protein chain",
        ),
        (
            {
                "sequences": [protein(["A"], msa={"empty": True})],
                "templates": [{"cif": {"configMapKeyRef": {"name": "t", "key": "t.cif"}}, "force": True}],
            },
            "needs a numeric 'threshold'",
        ),
        (
            {"sequences": [protein(["A"], msa={"empty": True}, modifications=[{"position": 99, "ccd": "SEP"}])]},
            "outside the sequence",
        ),
    ],
)
def test_invalid_inputs_are_reported(fields, expected):
    errors = errors_for(**fields)
    assert any(expected in e for e in errors), errors

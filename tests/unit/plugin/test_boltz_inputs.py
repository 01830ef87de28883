"""boltz inputs (YAML and FASTA) -> BoltzPrediction: the translation, the file rules, and the refusals."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from boltz_kubectl import manifests
from boltz_kubectl.errors import PluginError
from boltz_kubectl.inputs import files as files_module
from boltz_kubectl.inputs.boltz import convert_boltz_input
from boltz_kubectl.inputs.fasta import fasta_to_boltz_doc
from boltz_kubectl.manifests import ResultsOptions, build_prediction
from boltz_operator.api import BoltzPredictionSpec

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "boltz_inputs"
INPUTS = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".yaml", ".fasta"))
P1 = "MKTLLVAGAVALSACSQ"


def submit(path: Path, results: ResultsOptions | None = None, cwd: Path | None = None):
    return build_prediction(convert_boltz_input(path, cwd), "p", "ns", results=results)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(PluginError) as raised:
        submit(path, **kwargs)
    return str(raised.value)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.name)
def test_every_example_becomes_a_valid_prediction(path):
    submission = submit(path)
    spec = BoltzPredictionSpec.model_validate(submission.resource["spec"])
    assert spec.sequences
    keys = set((submission.configmap or {}).get("data", {}))
    refs = [e.protein.msa.config_map_key_ref for e in spec.sequences if e.protein and e.protein.msa]
    refs += [t.cif.config_map_key_ref for t in spec.templates or [] if t.cif]
    assert {r.key for r in refs if r} == keys  # every file the spec names is in the ConfigMap, and nothing else


def test_fasta_proteins_sharing_a_sequence_and_msa_become_one_entry():
    spec = submit(FIXTURES / "ligand.fasta").resource["spec"]
    protein = spec["sequences"][0]["protein"]
    assert protein["ids"] == ["A", "B"]  # boltz makes one entity of them; the operator names one MSA file per entry
    assert protein["msa"] == {"configMapKeyRef": {"name": "p-inputs", "key": "seq1.a3m"}}
    assert [s["ligand"]["ids"] for s in spec["sequences"][1:]] == [["C"], ["D"], ["E"], ["F"]]


def test_fasta_reader_follows_biopython_and_boltz():
    doc, problems = fasta_to_boltz_doc(">A|PROTEIN|a.a3m some words\nMKV\nLL \n>B|Smiles\nCCO\n>C|dna\nACGT\n")
    assert problems == []
    assert doc["sequences"] == [
        {"protein": {"id": "A", "sequence": "MKVLL", "msa": "a.a3m"}},
        {"ligand": {"id": "B", "smiles": "CCO"}},
        {"dna": {"id": "C", "sequence": "ACGT"}},
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("MKV\n>A|protein\nMKV\n", "text before the first '>'"),
        (">A\nMKV\n", "header must be >CHAIN_ID|ENTITY_TYPE"),
        (">A|peptide\nMKV\n", "unknown entity type 'peptide'"),
        (">A|ccd|x.a3m\nSAH\n", "only allowed for proteins"),
        (">A|protein|x.a3m|extra\nMKV\n", "more than three"),
        (">A|protein\n", "empty sequence"),
    ],
)
def test_fasta_problems_are_named(text, message):
    _, problems = fasta_to_boltz_doc(text)
    assert any(message in p for p in problems), problems


def test_yaml_translation_key_by_key(tmp_path):
    write(tmp_path, "msas/a.csv", f"key,sequence\n1,{P1}\n")
    path = write(
        tmp_path,
        "in.yaml",
        f"""
        sequences:
          - protein: {{id: A, sequence: {P1}, msa: msas/a.csv, modifications: [{{position: 2, ccd: SEP}}]}}
          - ligand: {{id: L, ccd: [SAH]}}
        constraints:
          - pocket: {{binder: L, contacts: [[A, 3]], max_distance: 9, force: true}}
          - contact: {{token1: [A, 1], token2: [L, C1]}}
          - bond: {{atom1: [A, 15, SG], atom2: [L, 1, SD]}}
        properties:
          - affinity: {{binder: L}}
        """,
    )
    spec = submit(path).resource["spec"]
    assert spec["sequences"][0]["protein"]["modifications"] == [{"position": 2, "ccd": "SEP"}]
    assert spec["sequences"][1] == {"ligand": {"ids": ["L"], "ccd": "SAH"}}  # a one-code list is that code
    pocket, contact, bond = (c[k] for c, k in zip(spec["constraints"], ("pocket", "contact", "bond")))
    assert pocket == {"binder": "L", "contacts": [{"chain": "A", "residue": 3}], "maxDistance": 9, "force": True}
    assert contact == {"token1": {"chain": "A", "residue": 1}, "token2": {"chain": "L", "atom": "C1"}}
    assert bond["atom1"] == {"chain": "A", "residue": 15, "atom": "SG"}
    assert spec["affinity"] == {"binder": "L"}


def test_paths_resolve_against_the_input_folder_then_the_current_directory(tmp_path):
    inputs = tmp_path / "inputs"
    write(inputs, "msa/a.a3m", f">q\n{P1}\n")
    # boltz's own examples name files relative to where `boltz predict` runs (./examples/msa/...)
    path = write(inputs, "in.yaml", f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: ./inputs/msa/a.a3m}}}}]")
    submission = submit(path, cwd=tmp_path)
    assert submission.configmap["data"] == {"a.a3m": f">q\n{P1}\n"}


@pytest.mark.parametrize(
    "msa, message",
    [
        ("missing.a3m", "file missing.a3m not found"),
        ("../outside.a3m", "outside the input's folder"),
        ("{outside}", "outside the input's folder"),
        ("link.a3m", "outside the input's folder"),
    ],
)
def test_files_must_exist_inside_the_input_folder(tmp_path, msa, message):
    outside = write(tmp_path, "outside.a3m", f">q\n{P1}\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link.a3m").symlink_to(outside)
    msa = msa.format(outside=outside)
    path = write(tmp_path / "in", "x.yaml", f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: '{msa}'}}}}]")
    assert message in refusal(path, cwd=tmp_path / "in")


def test_unknown_boltz_keys_are_refused_with_their_name(tmp_path):
    path = write(tmp_path, "x.yaml", f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: empty, msa_path: x}}}}]")
    assert "protein A: unknown key 'msa_path'" in refusal(path)
    path = write(tmp_path, "y.yaml", f"sequences: [{{protein: {{id: A, sequence: {P1}}}}}]\noptions: {{seed: 1}}")
    assert "unknown top-level key 'options'" in refusal(path)


@pytest.mark.parametrize(
    "body, field",
    [
        # boltz takes these; the CRD cannot express them: the error names the field instead of dropping it
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: empty}}}}, {{ligand: {{id: L, ccd: [SAH, SEP]}}}}]",
         "sequences[1].ligand.ccd: a list of CCD codes"),
        (f"sequences: [{{protein: {{id: ABCDEF, sequence: {P1}, msa: empty}}}}]", "spec.sequences[0].protein.ids[0]"),
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: empty}}}}, {{ligand: {{id: L, ccd: SAH}}}}]\n"
         "constraints: [{pocket: {binder: L, contacts: [[A, 2]], max_distance: 30}}]",
         "spec.constraints[0].pocket.maxDistance"),
    ],
)  # fmt: skip
def test_what_the_crd_cannot_express_is_an_error_naming_the_field(tmp_path, body, field):
    assert field in refusal(write(tmp_path, "x.yaml", body))


def test_small_files_go_to_the_configmap_large_ones_to_s3(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests, "CONFIGMAP_FILE_LIMIT", 100)
    write(tmp_path, "small.a3m", f">q\n{P1}\n")
    write(tmp_path, "large.a3m", f">q\n{P1}\n" + f">hit\n{P1}\n" * 20)
    path = write(
        tmp_path,
        "x.yaml",
        f"""
        sequences:
          - protein: {{id: A, sequence: {P1}, msa: small.a3m}}
          - protein: {{id: B, sequence: MKVLAAGIVG, msa: large.a3m}}
        """,
    )
    assert "give --results s3://BUCKET/PREFIX" in refusal(path)
    submission = submit(path, results=ResultsOptions("s3://bucket/runs", endpoint="http://s3.local"))
    proteins = [s["protein"] for s in submission.resource["spec"]["sequences"]]
    assert proteins[0]["msa"] == {"configMapKeyRef": {"name": "p-inputs", "key": "small.a3m"}}
    assert proteins[1]["msa"] == {"s3": {"uri": "s3://bucket/runs/ns/p/inputs/large.a3m"}}
    assert [u.uri for u in submission.uploads] == ["s3://bucket/runs/ns/p/inputs/large.a3m"]
    assert set(submission.configmap["data"]) == {"small.a3m"}
    assert submission.resource["spec"]["results"] == {"s3": {"uri": "s3://bucket/runs", "endpoint": "http://s3.local"}}


def test_files_over_the_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "MAX_FILE_BYTES", 64)
    write(tmp_path, "a.a3m", f">q\n{P1}\n" * 10)
    path = write(tmp_path, "x.yaml", f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: a.a3m}}}}]")
    assert "over the limit of 64 bytes" in refusal(path)


def test_two_files_with_one_name_get_distinct_keys(tmp_path):
    write(tmp_path, "a/msa.a3m", f">q\n{P1}\n")
    write(tmp_path, "b/msa.a3m", ">q\nMKVLAAGIVG\n")
    path = write(
        tmp_path,
        "x.yaml",
        f"""
        sequences:
          - protein: {{id: A, sequence: {P1}, msa: a/msa.a3m}}
          - protein: {{id: B, sequence: MKVLAAGIVG, msa: b/msa.a3m}}
        """,
    )
    assert set(submit(path).configmap["data"]) == {"msa.a3m", "msa-2.a3m"}


def test_the_fixture_folder_is_self_contained(tmp_path):
    """The examples name their files relative to their own folder: a copy anywhere converts the same."""
    copy = tmp_path / "copy"
    shutil.copytree(FIXTURES, copy)
    assert submit(copy / "ligand.yaml", cwd=tmp_path).configmap == submit(FIXTURES / "ligand.yaml").configmap

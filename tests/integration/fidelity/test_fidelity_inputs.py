"""The Boltz YAML the operator renders is accepted by boltz 2.2.1's own parser, and what our validator refuses,
boltz refuses too.

Positive cases go the whole way a real run goes: spec -> render_boltz_input -> the ConfigMap text the operator
writes -> the worker's load/check/stage -> boltz's `parse_yaml` and `process_input` (MSA files read and converted,
templates parsed and dumped, the record written), with placeholder MSA and template files at the rendered paths.
The renderer's directories are pointed at a temporary directory; a test checks that changes nothing but the
paths. boltz needs its canonical residue molecules: generated offline from biotite's CCD (see conftest).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from boltz_contract import PredictRun, ResultsTarget
from boltz_contract.boltz_input import local_paths, validate_boltz_input
from boltz_operator.api import BoltzPredictionSpec
from boltz_operator.builders.common import OwnerRef
from boltz_operator.builders.prediction import KIND as PREDICTION_KIND
from boltz_operator.builders.prediction import build_configmap
from boltz_operator.render import (
    DEFAULT_DOWNLOADS_DIR,
    DEFAULT_INPUTS_DIR,
    predict_options,
    render_boltz_input,
    validate_prediction,
)
from boltz_worker.boltz_runs import predict as worker_predict
from support.fidelity import relocate, write_msas

REPO = Path(__file__).resolve().parents[3]
EGFR = "GEAPNQALLRILKETEFKKIKVLGSGAFGTVYKGLWIPEGEKVKIPVAIKELREATSPKANKEILDEAYVMASVDNPHVCRLLGICLTSTVQLITQLMPFGCLLDYVRE"
P1 = "MKTAYIAKQRQISFVKSHFSRQ"
P2 = "GSHMLEDPVAGCKLW"
P3 = "MADQLTEEQIAEFKEAF"
LIGAND_CCD = ("SAH", "SEP")  # CCD components the cases use, beyond the canonical residues


def _example_spec() -> dict:
    body = yaml.safe_load((REPO / "examples" / "prediction.yaml").read_text())
    return body["spec"]


def _protein(ids, sequence, msa=None, **extra):
    body = {"ids": ids, "sequence": sequence, **extra}
    if msa is not None:
        body["msa"] = msa
    return {"protein": body}


EMPTY = {"empty": True}

SPECS: dict[str, dict] = {
    "example": _example_spec(),
    "msa-files": {
        "sequences": [
            _protein(["A"], P1, {"configMapKeyRef": {"name": "msas", "key": "a.a3m"}}),
            _protein(["B", "C"], P2, {"s3": {"uri": "s3://inputs/msas/b.csv"}}),
            _protein(["D"], P3, {"secretKeyRef": {"name": "private-msas", "key": "d.a3m"}}),
            _protein(["E"], "MKVLAAGIVG", EMPTY),
        ],
        "results": {"s3": {"uri": "s3://results/runs"}},
    },
    "polymers-ccd-ligand-affinity": {
        "sequences": [
            _protein(["A"], "MSXLLVCKG", EMPTY, modifications=[{"position": 2, "ccd": "SEP"}]),
            {"dna": {"ids": ["B", "C"], "sequence": "ACGTN"}},
            {"rna": {"ids": ["D"], "sequence": "ACGUN", "cyclic": True}},
            {"ligand": {"ids": ["E"], "ccd": "SAH"}},
        ],
        "affinity": {"binder": "E"},
    },
    "constraints": {
        "sequences": [
            _protein(["A"], "MCKLVAGHEC", EMPTY),
            {"ligand": {"ids": ["B"], "ccd": "SAH"}},
            {"ligand": {"ids": ["C"], "smiles": "CC(=O)Nc1ccc(O)cc1"}},
        ],
        "constraints": [
            {
                "bond": {
                    "atom1": {"chain": "A", "residue": 2, "atom": "SG"},
                    "atom2": {"chain": "B", "residue": 1, "atom": "SD"},
                }
            },
            {
                "pocket": {
                    "binder": "C",
                    "contacts": [{"chain": "A", "residue": 3}, {"chain": "A", "residue": 7}],
                    "maxDistance": 8,
                    "force": True,
                }
            },
            {
                "contact": {
                    "token1": {"chain": "A", "residue": 1},
                    "token2": {"chain": "B", "atom": "N"},
                    "maxDistance": 10,
                }
            },
        ],
    },  # fmt: skip
    "templates": {
        "sequences": [_protein(["A"], P1, EMPTY), _protein(["B"], P2, EMPTY)],
        "templates": [
            {
                "cif": {"configMapKeyRef": {"name": "templates", "key": "a.cif"}},
                "chainIds": ["A"],
                "templateIds": ["A"],
                "force": True,
                "threshold": 2.5,
            },
            {"cif": {"s3": {"uri": "s3://inputs/templates/ab.cif"}}},
            {
                "pdb": {"configMapKeyRef": {"name": "templates", "key": "b.pdb"}},
                "chainIds": ["B"],
                "templateIds": ["A1"],
            },
        ],
        "results": {"s3": {"uri": "s3://results/runs"}},
    },  # fmt: skip
    "msa-server": {
        "sequences": [
            _protein(["A"], P1),
            _protein(["B"], P2, {"server": True}),
            {"ligand": {"ids": ["C"], "ccd": "SAH"}},
        ],
        "msaServer": {"url": "https://msa.example.org", "pairingStrategy": "complete"},
    },
}
# The templates rendered for the "templates" case hold these chains (template file stem -> chain -> sequence).
TEMPLATE_CHAINS = {"template-0": {"A": P1}, "template-1": {"A": P1, "B": P2}, "template-2": {"A": P2}}


@dataclass
class Prepared:
    spec: BoltzPredictionSpec
    doc: dict
    staged: Path  # the file boltz is given, as the worker stages it
    inputs: Path
    downloads: Path


def prepare(name: str, spec_body: dict, root: Path) -> tuple[Prepared, dict[str, dict]]:
    """Everything the operator and the worker do to a spec before boltz runs. Returns the template files to make."""
    spec = BoltzPredictionSpec.model_validate(spec_body)
    inputs, downloads, config, work = (root / d for d in ("inputs", "downloads", "config", "work"))
    for d in (inputs, downloads, config, work):
        d.mkdir(parents=True, exist_ok=True)

    # Operator: validation and rendering, as for the Job, with the file directories under `root`.
    assert validate_prediction(spec, inputs_dir=str(inputs), downloads_dir=str(downloads)) == []
    doc, files = render_boltz_input(spec, str(inputs), str(downloads))
    in_pod, _ = render_boltz_input(spec)
    assert relocate(relocate(in_pod, DEFAULT_INPUTS_DIR, str(inputs)), DEFAULT_DOWNLOADS_DIR, str(downloads)) == doc
    run = PredictRun(
        record_id=name,
        input_file=f"{name}.yaml",
        options=predict_options(spec),
        downloads=[f.s3_download() for f in files if f.source == "s3"],
        results=ResultsTarget(uri=f"s3://results/default/{name}"),
    )
    configmap = build_configmap(OwnerRef(PREDICTION_KIND, "default", name, "0000"), doc, run)
    (config / run.input_file).write_text(configmap.data[run.input_file])

    # The files the YAML names: MSAs from the chain's own sequence, templates made in the boltz venv.
    templates: dict[str, dict] = {}
    write_msas(doc)
    for template in doc.get("templates", []):
        path = template.get("cif") or template.get("pdb")
        templates[path] = TEMPLATE_CHAINS[Path(path).stem]
    assert sorted(f.path for f in files) == sorted(local_paths(doc))

    # Worker: load what the ConfigMap holds, check it, stage it where boltz runs.
    loaded = worker_predict.load_input(config / run.input_file)
    assert loaded == doc
    worker_predict.check_input(loaded, run)
    staged = worker_predict.stage_input(config / run.input_file, loaded, config, work / run.input_file)
    return Prepared(spec=spec, doc=doc, staged=staged, inputs=inputs, downloads=downloads), templates


# ---------------------------------------------------------------------------------------------- negative cases

SAH_LIGAND = {"ligand": {"id": "L", "ccd": "SAH"}}
PROTEIN = {"protein": {"id": "A", "sequence": P1, "msa": "empty"}}

# name -> (document, our validator's message (regex), boltz's error (regex)): both refuse it, for the same reason.
REJECTED: dict[str, tuple[dict, str, str]] = {
    "ligand-smiles-and-ccd": (
        {"sequences": [PROTEIN, {"ligand": {"id": "B", "smiles": "CCO", "ccd": "SAH"}}]},
        r"exactly one of 'smiles' or 'ccd'", r"^AssertionError: .*\"smiles\" not in .* or \"ccd\" not in",
    ),
    "affinity-binder-is-a-protein": (
        {"sequences": [PROTEIN, SAH_LIGAND], "properties": [{"affinity": {"binder": "A"}}]},
        r"affinity binder 'A' is a protein", r"Chain A is not a ligand",
    ),
    "unknown-entity-type": (
        {"sequences": [PROTEIN, {"peptide": {"id": "B", "sequence": "MKV"}}]},
        r"unknown entity type 'peptide'", r"Invalid entity type: peptide",
    ),
    "affinity-binder-with-copies": (
        {"sequences": [PROTEIN, {"ligand": {"id": ["B", "C"], "smiles": "CCO"}}],
         "properties": [{"affinity": {"binder": "B"}}]},
        r"has several copies", r"ligand that has multiple copies",
    ),
    "affinity-binder-multi-residue-ccd": (
        {"sequences": [PROTEIN, {"ligand": {"id": "B", "ccd": ["SAH", "SAH"]}}],
         "properties": [{"affinity": {"binder": "B"}}]},
        r"multi-residue CCD ligand", r"affinity for multi residue ligands",
    ),
    "mixed-msa-file-and-server": (
        {"sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "/tmp/a.a3m"}},
                       {"protein": {"id": "B", "sequence": P2}}]},
        r"cannot mix MSA files", r"Cannot mix custom and auto-generated MSAs",
    ),
    "same-sequence-different-msa": (
        {"sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "empty"}},
                       {"protein": {"id": "B", "sequence": P1, "msa": "/tmp/b.a3m"}}]},
        r"same sequence must share the same msa", r"same sequence must share the same MSA",
    ),
    "version-2": ({"version": 2, "sequences": [PROTEIN]}, r"version must be 1", r"Invalid version 2"),
    "bond-beyond-the-chain": (
        {"sequences": [PROTEIN, SAH_LIGAND],
         "constraints": [{"bond": {"atom1": ["A", 99, "SG"], "atom2": ["L", 1, "SD"]}}]},
        r"residue 99 is beyond the end of chain A", r"^KeyError: \('A', 98, 'SG'\)",
    ),
    "contact-on-unknown-chain": (
        {"sequences": [PROTEIN, SAH_LIGAND], "constraints": [{"contact": {"token1": ["A", 1], "token2": ["Z", 1]}}]},
        r"chain 'Z' is not a chain of the input", r"^KeyError: 'Z'",
    ),
    "two-affinity-ligands": (
        {"sequences": [PROTEIN, SAH_LIGAND, {"ligand": {"id": "M", "smiles": "CCO"}}],
         "properties": [{"affinity": {"binder": "L"}}, {"affinity": {"binder": "M"}}]},
        r"only one affinity property", r"Only one affinity ligand is currently supported",
    ),
    "template-without-a-file": (
        {"sequences": [PROTEIN], "templates": [{"chain_id": "A"}]},
        r"needs exactly one of 'cif' or 'pdb'", r"missing CIF or PDB path",
    ),
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def parsed(boltz_side, ensure_mols, tmp_path_factory) -> dict[str, tuple[Prepared | dict, dict]]:
    """Every case, positive and negative, through boltz in one process (importing boltz takes seconds)."""
    mol_dir = ensure_mols(*LIGAND_CCD)
    root = tmp_path_factory.mktemp("fidelity-inputs")
    prepared, templates, paths = {}, {}, {}
    for name, body in SPECS.items():
        prepared[name], more = prepare(name, body, root / name)
        templates.update(more)
        paths[name] = prepared[name].staged
    rejected = root / "rejected"
    rejected.mkdir()
    for name, (doc, _, _) in REJECTED.items():
        paths[name] = rejected / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(doc, sort_keys=False))
    spec_file = root / "templates.json"
    spec_file.write_text(json.dumps(templates))
    boltz_side("template", spec_file)
    answers = boltz_side("parse", mol_dir, root / "boltz-work", *paths.values())
    cases = {**prepared, **{name: REJECTED[name][0] for name in REJECTED}}
    return {name: (cases[name], answers[str(path)]) for name, path in paths.items()}


def accepted(parsed, name: str) -> tuple[Prepared, dict]:
    case, answer = parsed[name]
    assert answer["accepted"], f"boltz refused the {name} input: {answer['error']}\n{answer['traceback']}"
    return case, answer["summary"]


def chains(summary: dict) -> dict[str, dict]:
    return {c["name"]: c for c in summary["chains"]}


# ---------------------------------------------------------------------------------------------- positive cases


@pytest.mark.parametrize("name", SPECS)
def test_boltz_accepts_and_processes_the_rendered_input(name, parsed):
    """parse_yaml accepts it; process_input (what `boltz predict` runs next) reads every file and writes the record."""
    case, summary = accepted(parsed, name)
    processing = summary["processing"]
    if name == "msa-server":  # the one case that needs --use_msa_server, which the worker passes for it
        assert not processing["ok"]
        assert "--use_msa_server flag not set" in processing["output"]
        assert predict_options(case.spec).use_msa_server
        return
    assert processing["ok"], processing["output"]
    assert not predict_options(case.spec).use_msa_server
    assert summary["id"] == name  # boltz names the record (and every output) after the file's stem
    rendered_ids = [i for item in case.doc["sequences"] for body in item.values() for i in _ids(body["id"])]
    assert [c["name"] for c in summary["chains"]] == rendered_ids


def _ids(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_example_is_a_protein_and_a_smiles_ligand_with_affinity(parsed):
    _, summary = accepted(parsed, "example")
    by_name = chains(summary)
    assert by_name["A"]["type"] == "PROTEIN" and by_name["A"]["msa_id"] == -1  # msa: empty
    assert by_name["B"]["type"] == "NONPOLYMER" and by_name["B"]["residues"] == ["LIG1"]
    assert summary["affinity"]["chain_id"] == 1  # chain B
    assert summary["extra_mols"] == ["LIG1"]


def test_msa_files_reach_boltz_at_their_rendered_paths_and_are_read(parsed):
    case, summary = accepted(parsed, "msa-files")
    by_name = chains(summary)
    assert by_name["A"]["msa_id"] == str(case.inputs / "msa-A.a3m")  # ConfigMap key
    assert by_name["B"]["msa_id"] == by_name["C"]["msa_id"] == str(case.downloads / "msa-B.csv")  # S3, shared
    assert by_name["D"]["msa_id"] == str(case.inputs / "msa-D.a3m")  # Secret key
    assert by_name["E"]["msa_id"] == -1
    record = summary["processing"]["record"]
    assert len(summary["processing"]["msas"]) == 3  # a3m, csv, a3m converted by boltz's own parsers
    assert {c["chain_name"]: c["msa_id"] for c in record["chains"]}["E"] == -1


def test_nucleic_acids_modifications_ccd_ligand_and_affinity(parsed):
    _, summary = accepted(parsed, "polymers-ccd-ligand-affinity")
    by_name = chains(summary)
    assert by_name["A"]["residues"][:4] == ["MET", "SEP", "UNK", "LEU"]  # modification at 2, X -> UNK
    assert by_name["B"]["type"] == by_name["C"]["type"] == "DNA"
    assert by_name["B"]["residues"] == ["DA", "DC", "DG", "DT", "DN"]
    assert by_name["D"]["type"] == "RNA" and by_name["D"]["residues"] == ["A", "C", "G", "U", "N"]
    assert by_name["D"]["cyclic_period"] == 5 and by_name["A"]["cyclic_period"] == 0
    assert by_name["E"]["residues"] == ["SAH"] and by_name["E"]["atoms"] == 26  # heavy atoms of SAH
    assert summary["affinity"]["chain_id"] == 4
    assert 380 < summary["affinity"]["mw"] < 390  # SAH, 384.4 g/mol


def test_bond_pocket_and_contact_constraints(parsed):
    _, summary = accepted(parsed, "constraints")
    assert summary["covalent_bonds"] == 1  # the bond constraint, as boltz2 adds it to the bonds table
    [pocket] = summary["pocket_constraints"]
    assert pocket["binder"] == 2 and pocket["max_distance"] == 8.0 and pocket["force"]  # chain C
    assert [c[0] for c in pocket["contacts"]] == [0, 0]  # both on chain A
    [contact] = summary["contact_constraints"]
    assert contact["token1"][0] == 0 and contact["token2"][0] == 1  # A's residue, B's atom N
    assert contact["max_distance"] == 10.0 and not contact["force"]


def test_templates_by_configmap_and_s3_cif_and_pdb(parsed):
    _, summary = accepted(parsed, "templates")
    records = summary["templates"]
    by_template = {}
    for record in records:
        by_template.setdefault(record["name"], []).append(record)
    assert set(by_template) == {"template-0", "template-1", "template-2"}
    [forced] = by_template["template-0"]
    assert (forced["query_chain"], forced["template_chain"], forced["force"], forced["threshold"]) == (
        "A",
        "A",
        True,
        2.5,
    )
    assert {(r["query_chain"], r["template_chain"]) for r in by_template["template-1"]} == {("A", "A"), ("B", "B")}
    [pdb] = by_template["template-2"]
    assert (pdb["query_chain"], pdb["template_chain"]) == ("B", "A1")  # boltz names PDB chains A1, A2, ...
    assert len(summary["processing"]["templates"]) == 3


def test_msa_server_chains_are_left_for_the_server(parsed):
    _, summary = accepted(parsed, "msa-server")
    by_name = chains(summary)
    assert by_name["A"]["msa_id"] == by_name["B"]["msa_id"] == 0  # 0: boltz computes it with --use_msa_server


# ---------------------------------------------------------------------------------------------- negative cases


@pytest.mark.parametrize("name", REJECTED)
def test_what_our_validator_rejects_boltz_rejects(name, parsed):
    doc, ours, theirs = REJECTED[name]
    errors = validate_boltz_input(doc)
    assert any(re.search(ours, e) for e in errors), f"our validator: {errors}"
    _, answer = parsed[name]
    assert not answer["accepted"], f"boltz 2.2.1 accepted {name}: {answer.get('summary')}"
    assert re.search(theirs, answer["error"]), f"boltz refused it for another reason: {answer['error']}"

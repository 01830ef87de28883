"""CRD generation: structural schemas, descriptions, CEL rules, CRD metadata, and crds/ kept in sync."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from boltz_operator.api import MODEL_CACHE_RESOURCE, PREDICTION_RESOURCE, RESOURCES
from boltz_operator.crdgen import build_crd, crd_file_name, render_crds, walk, write_or_check
from boltz_operator.crdgen.__main__ import main as crdgen_main

REPO = Path(__file__).resolve().parents[3]
# Keywords a structural schema must not contain (anyOf only in the int-or-string shape).
FORBIDDEN = {"$ref", "$defs", "allOf", "oneOf", "not", "nullable", "title", "const", "propertyNames", "uniqueItems"}


def schema_of(resource) -> dict:
    return build_crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def nodes(resource):
    yield from walk(schema_of(resource))


def rules_at(resource, path: str) -> list[str]:
    node = dict(nodes(resource))[path]
    return [r["rule"] for r in node.get("x-kubernetes-validations", [])]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_schema_is_structural(resource):
    for path, node in nodes(resource):
        assert not FORBIDDEN & node.keys(), f"{path}: {FORBIDDEN & node.keys()}"
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            continue
        assert "anyOf" not in node, path
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path
        if node["type"] == "object":
            assert not ("properties" in node and "additionalProperties" in node), path
            assert node.get("additionalProperties") is not False, path
        if "default" in node and node["type"] == "object":
            assert node["default"] == {}, f"{path}: object defaults are {{}} so nested defaults apply"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, f"{path}: Kubernetes wants a boolean {bound}"


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_field_has_a_description(resource):
    for path, node in nodes(resource):
        if path.endswith(("[]", "{}")) and node["type"] != "object":
            continue  # scalar list items and map values are described by their list or map
        if path in (".apiVersion", ".kind", ".metadata"):
            continue
        assert node.get("description", "").strip(), f"{resource.kind}{path} has no description"


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_spec_lists_and_strings_are_bounded(resource):
    """The apiserver prices CEL rules by maxItems/maxLength; unbounded ones make rules too expensive."""
    spec = schema_of(resource)["properties"]["spec"]
    for path, node in walk(spec, ".spec"):
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def test_prediction_cel_rules():
    spec_rules = " ".join(rules_at(PREDICTION_RESOURCE, ".spec"))
    assert "self.affinity.binder in s.ligand.ids" in spec_rules
    assert "size(s.ligand.ids) > 1" in spec_rules
    assert "self.constraints.all(" in spec_rules
    assert "self.templates.all(" in spec_rules
    for field in ("modelCache", "sequences", "constraints", "templates", "affinity", "options", "msaServer", "results"):
        assert f"self.{field} == oldSelf.{field}" in spec_rules
    for mutable in ("resources", "timeoutSeconds", "retries", "queueName", "priorityClassName"):
        assert f"oldSelf.{mutable}" not in spec_rules
    assert any("exists_one" in r for r in rules_at(PREDICTION_RESOURCE, ".spec.sequences"))
    assert rules_at(PREDICTION_RESOURCE, ".spec.sequences[]") == [
        "(has(self.protein) ? 1 : 0) + (has(self.dna) ? 1 : 0) + (has(self.rna) ? 1 : 0) + (has(self.ligand) ? 1 : 0) == 1"
    ]
    assert rules_at(PREDICTION_RESOURCE, ".spec.sequences[].ligand") == [
        "(has(self.smiles) ? 1 : 0) + (has(self.ccd) ? 1 : 0) == 1"
    ]
    msa_rules = rules_at(PREDICTION_RESOURCE, ".spec.sequences[].protein.msa")
    assert msa_rules[0].startswith("((has(self.empty) && self.empty) ? 1 : 0)")
    assert any(".a3m" in r for r in msa_rules)
    assert rules_at(PREDICTION_RESOURCE, ".spec.results") == ["(has(self.s3) ? 1 : 0) + (has(self.pvc) ? 1 : 0) == 1"]
    assert rules_at(PREDICTION_RESOURCE, ".spec.constraints[]")
    assert rules_at(PREDICTION_RESOURCE, ".spec.constraints[].pocket.contacts[]")
    assert len(rules_at(PREDICTION_RESOURCE, ".spec.templates[]")) == 3


def test_immutability_messages_point_at_the_field():
    node = dict(nodes(PREDICTION_RESOURCE))[".spec"]
    rule = next(r for r in node["x-kubernetes-validations"] if "oldSelf.sequences" in r["rule"])
    assert rule["message"] == "spec.sequences is immutable after creation; create a new BoltzPrediction to re-run"
    assert rule["fieldPath"] == ".sequences"


def test_model_cache_cel_rules():
    assert rules_at(MODEL_CACHE_RESOURCE, ".spec.source") == [
        "(has(self.huggingFace) ? 1 : 0) + (has(self.s3) ? 1 : 0) + (has(self.preloaded) ? 1 : 0) == 1"
    ]
    assert rules_at(MODEL_CACHE_RESOURCE, ".spec.storage")


def test_defaults_and_int_or_string():
    by_path = dict(nodes(MODEL_CACHE_RESOURCE))
    assert by_path[".spec.storage.size"]["default"] == "20Gi"
    assert by_path[".spec.storage.size"]["x-kubernetes-int-or-string"] is True
    assert by_path[".spec.storage.accessModes"]["default"] == ["ReadWriteMany"]
    assert by_path[".spec.storage"]["default"] == {}
    assert by_path[".spec.retainVolumeOnDelete"]["default"] is True
    assert by_path[".spec.populateJob.activeDeadlineSeconds"]["default"] == 7200
    pred = dict(nodes(PREDICTION_RESOURCE))
    assert pred[".spec.options"]["default"] == {}
    assert pred[".spec.options.diffusionSamples"] | {"description": ""} == {
        "description": "",
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 1,
    }
    assert pred[".spec.options.outputFormat"]["enum"] == ["mmcif", "pdb"]
    assert pred[".spec.options.stepScale"]["exclusiveMinimum"] is True
    assert pred[".spec.sequences[].protein.ids"]["x-kubernetes-list-type"] == "set"
    assert pred[".spec"]["required"] == ["sequences"]
    assert "default" not in pred[".spec.resources.gpus"]  # None: the operator's configured default
    assert pred[".status.conditions"]["x-kubernetes-list-type"] == "map"


def test_crd_metadata():
    crd = build_crd(PREDICTION_RESOURCE)
    assert crd["metadata"]["name"] == "boltzpredictions.boltz-operator.io"
    spec = crd["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == ["bp", "bpred"]
    assert spec["names"]["categories"] == ["boltz"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Confidence": ".status.results.confidenceScore",
        "Affinity": ".status.results.affinityPredValue",
        "Age": ".metadata.creationTimestamp",
    }
    cache = build_crd(MODEL_CACHE_RESOURCE)["spec"]
    assert cache["names"]["shortNames"] == ["bmc"]
    assert [c["name"] for c in cache["versions"][0]["additionalPrinterColumns"]] == ["Phase", "Size", "Bytes", "Age"]


def test_checked_in_crds_are_up_to_date():
    """Drift check: run `python -m boltz_operator.crdgen` after changing the models."""
    for name, text in render_crds().items():
        assert (REPO / "crds" / name).read_text() == text, f"crds/{name} is stale: run python -m boltz_operator.crdgen"
        chart_copy = REPO / "helm" / "boltz-operator" / "crds" / name
        if chart_copy.parent.parent.is_dir():
            assert chart_copy.read_text() == text, f"{chart_copy} differs from crds/{name}"


def test_crd_files_are_valid_yaml_named_by_group_and_plural():
    files = render_crds()
    assert sorted(files) == [
        "boltz-operator.io_boltzgencampaigns.yaml",
        "boltz-operator.io_boltzmodelcaches.yaml",
        "boltz-operator.io_boltzpredictions.yaml",
        "boltz-operator.io_boltzscreens.yaml",
    ]
    for resource in RESOURCES:
        assert yaml.safe_load(files[crd_file_name(resource)]) == build_crd(resource)


def test_cli_writes_then_checks(tmp_path, capsys):
    (tmp_path / "helm" / "boltz-operator").mkdir(parents=True)
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 1
    assert "crds/boltz-operator.io_boltzpredictions.yaml: missing" in capsys.readouterr().out
    assert crdgen_main(["--root", str(tmp_path)]) == 0
    for name in render_crds():
        assert (tmp_path / "crds" / name).read_bytes() == (tmp_path / "helm/boltz-operator/crds" / name).read_bytes()
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 0
    stale = tmp_path / "crds" / crd_file_name(PREDICTION_RESOURCE)
    stale.write_text(stale.read_text().replace("maxItems: 32", "maxItems: 31", 1))
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 1
    assert "-                  maxItems: 31" in capsys.readouterr().out
    assert write_or_check(tmp_path, check=True) != []


def test_cli_check_passes_on_this_checkout(tmp_path):
    shutil.copytree(REPO / "crds", tmp_path / "crds")
    if (REPO / "helm" / "boltz-operator" / "crds").is_dir():
        shutil.copytree(REPO / "helm" / "boltz-operator" / "crds", tmp_path / "helm" / "boltz-operator" / "crds")
    assert crdgen_main(["--check", "--root", str(tmp_path)]) == 0

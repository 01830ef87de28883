"""BoltzGenCampaign: the model, its examples, defaults, validation, and the CEL rules in its CRD."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from boltz_operator.api import (
    CAMPAIGN_RESOURCE,
    BoltzGenCampaign,
    BoltzGenCampaignSpec,
    BoltzGenCampaignStatus,
    CampaignPhase,
)
from boltz_operator.api.campaign import (
    IMMUTABLE_FIELDS,
    Protocol,
    auto_shards,
)
from boltz_operator.api.common import SPOT_TOLERATIONS
from boltz_operator.api.design_spec import DesignFile, DesignSpec
from boltz_operator.crdgen import build_crd, walk

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def minimal_spec(**extra) -> dict:
    return {
        "designSpec": {
            "entities": [
                {"protein": {"ids": ["B"], "sequence": "80..140"}},
                {"file": {"s3": {"uri": "s3://targets/6m1u.cif"}, "include": [{"chain": {"id": "A"}}]}},
            ]
        },
        "numDesigns": 100,
        **extra,
    }


def schema_nodes() -> dict[str, dict]:
    return dict(walk(build_crd(CAMPAIGN_RESOURCE)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))


def rules_at(path: str) -> list[str]:
    return [r["rule"] for r in schema_nodes()[path].get("x-kubernetes-validations", [])]


# ---------------------------------------------------------------------------------------------- examples


def test_binder_example_parses():
    campaign = BoltzGenCampaign.model_validate(load("campaign.yaml"))
    spec = campaign.spec
    assert campaign.metadata["name"] == "pdl1-binder"
    assert spec.protocol is Protocol.PROTEIN_ANYTHING
    assert (spec.num_designs, spec.budget, spec.shards, spec.shard_count) == (2000, 50, 20, 20)
    binder, target = spec.design_spec.entities
    assert binder.entity_type == "protein" and binder.protein.sequence == "80..140"
    assert target.entity_type == "file"
    assert target.file.config_map_key_ref.key == "6m1u.cif" and target.file.suffix == ".cif"
    assert target.file.include[0].chain.id == "A"
    assert spec.design_spec.files == [target.file]
    assert spec.step_options.alpha == 0.001
    assert spec.step_options.refolding_rmsd_threshold == 2.5
    assert spec.spot is True
    assert all(t in spec.tolerations for t in SPOT_TOLERATIONS)
    assert sum(spec.designs_in_shard(i) for i in range(spec.shard_count)) == 2000


def test_small_molecule_example_parses_with_defaults():
    campaign = BoltzGenCampaign.model_validate(load("campaign-small-molecule.yaml"))
    spec = campaign.spec
    assert spec.protocol is Protocol.PROTEIN_SMALL_MOLECULE
    assert [e.entity_type for e in spec.design_spec.entities] == ["protein", "ligand"]
    assert spec.design_spec.entities[1].ligand.ccd == "SAH"
    assert spec.shards == "auto" and spec.shard_count == 10
    assert spec.step_options.inverse_fold_num_sequences == 2
    assert spec.step_options.additional_filters[0].operator.value == "<"
    assert spec.model_cache == "boltzgen"
    # defaults
    assert spec.min_successful_shard_fraction == 0.9
    assert spec.timeout_seconds == 86400
    assert spec.retries_per_shard == 2
    assert spec.parallelism is None
    assert spec.spot is False and spec.tolerations == []
    assert spec.results is None
    assert spec.resources.gpus is None
    assert campaign.status.phase is None


def test_defaults_of_a_minimal_spec():
    spec = BoltzGenCampaignSpec.model_validate(minimal_spec())
    assert spec.protocol is Protocol.PROTEIN_ANYTHING
    assert spec.shards == "auto"
    assert spec.budget is None and spec.effective_budget == 30
    assert BoltzGenCampaignSpec.model_validate(minimal_spec(numDesigns=7)).effective_budget == 7
    body = spec.to_body()
    assert body["numDesigns"] == 100 and body["shards"] == "auto"
    assert body["designSpec"]["entities"][1]["file"]["s3"] == {"uri": "s3://targets/6m1u.cif"}
    assert "budget" not in body


@pytest.mark.parametrize(
    "num_designs, shards", [(1, 1), (99, 1), (100, 1), (101, 2), (2000, 20), (20000, 200), (1_000_000, 200)]
)
def test_auto_shards(num_designs, shards):
    assert auto_shards(num_designs) == shards


def test_designs_are_split_evenly_over_shards():
    spec = BoltzGenCampaignSpec.model_validate(minimal_spec(numDesigns=103, shards=10))
    counts = [spec.designs_in_shard(i) for i in range(10)]
    assert counts == [11, 11, 11] + [10] * 7 and sum(counts) == 103


def test_int_residue_ranges_become_strings():
    spec = DesignSpec.model_validate(
        {
            "entities": [
                {
                    "file": {
                        "configMapKeyRef": {"name": "t", "key": "t.PDB"},
                        "include": [{"chain": {"id": "A", "resIndex": 13}}],
                        "bindingTypes": [{"chain": {"id": "A", "binding": "5..7,13", "notBinding": "all"}}],
                        "structureGroups": [{"group": {"id": "all", "visibility": 1}}],
                        "designInsertions": [{"insertion": {"id": "A", "resIndex": 20, "numResidues": "3..6"}}],
                    }
                }
            ],
            "constraints": [{"totalLen": {"min": 50, "max": 200}}],
        }
    )
    file = spec.entities[0].file
    assert file.include[0].chain.res_index == "13"
    assert file.suffix == ".pdb"
    assert file.to_body()["designInsertions"][0]["insertion"]["numResidues"] == "3..6"


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"budget": 101}, "budget must not exceed numDesigns"),
        ({"numDesigns": 0}, "greater than or equal to 1"),
        ({"numDesigns": 1_000_001}, "less than or equal to 1000000"),
        ({"shards": 0}, "shards must be an integer"),
        ({"shards": 1001}, "shards must be an integer"),
        ({"shards": 101}, "at most numDesigns"),
        ({"shards": "many"}, "auto"),
        ({"shards": "5"}, "auto"),  # the apiserver takes only the string auto, so Python does too
        ({"shards": 4, "parallelism": 5}, "parallelism must not exceed shards"),
        ({"minSuccessfulShardFraction": 0}, "greater than 0"),
        ({"minSuccessfulShardFraction": 1.5}, "less than or equal to 1"),
        ({"protocol": "protein-everything"}, "protein-anything"),
        ({"stepOptions": {"inverseFoldAvoid": "CX"}}, "String should match pattern"),
        ({"stepOptions": {"noSuchFlag": 1}}, "noSuchFlag"),
        ({"results": {}}, "exactly one of s3, pvc"),
    ],
)
def test_invalid_specs(extra, message):
    with pytest.raises(ValidationError, match=message):
        BoltzGenCampaignSpec.model_validate(minimal_spec(**extra))


@pytest.mark.parametrize(
    "file, message",
    [
        ({"configMapKeyRef": {"name": "t", "key": "target.txt"}}, ".cif or .pdb"),
        ({"s3": {"uri": "s3://bucket/target.cif.gz"}}, ".cif or .pdb"),
        ({"s3": {"uri": "s3://bucket/a/../b.cif"}}, "must not contain '..'"),
        ({"configMapKeyRef": {"name": "t", "key": "..cif"}}, "must not contain '..'"),
        ({"configMapKeyRef": {"name": "t", "key": "a/b.cif"}}, "String should match pattern"),
        ({}, "exactly one of configMapKeyRef, s3"),
        ({"configMapKeyRef": {"name": "t", "key": "t.cif"}, "s3": {"uri": "s3://bucket/t.cif"}}, "exactly one of"),
        ({"s3": {"uri": "s3://bucket/t.cif"}, "path": "t.cif"}, "path"),  # host paths are not a field
        ({"s3": {"uri": "s3://bucket/t.cif"}, "include": [{"chain": {"id": "A", "resIndex": "1-5"}}]}, "pattern"),
    ],
)
def test_invalid_target_files(file, message):
    with pytest.raises(ValidationError, match=message):
        DesignFile.model_validate(file)


@pytest.mark.parametrize(
    "design_spec, message",
    [
        ({"entities": []}, "at least 1 item"),
        ({"entities": [{}]}, "exactly one of protein, dna, rna, ligand, file"),
        ({"entities": [{"protein": {"ids": ["A"], "sequence": "80-140"}}]}, "String should match pattern"),
        (
            {"entities": [{"protein": {"ids": ["A"], "sequence": "10"}}, {"ligand": {"ids": ["A"], "ccd": "SAH"}}]},
            "chain id A is used by more than one entity",
        ),
        (
            {
                "entities": [{"protein": {"ids": ["A"], "sequence": "10"}}],
                "constraints": [
                    {
                        "bond": {
                            "atom1": {"chain": "A", "residue": 1, "atom": "SG"},
                            "atom2": {"chain": "A", "residue": 5, "atom": "SG"},
                        }
                    },
                    {"totalLen": {"min": 5, "max": 10}},
                ],
            },
            "totalLen must be the first constraint",
        ),
        ({"entities": [{"ligand": {"ids": ["L"]}}]}, "exactly one of smiles, ccd"),
    ],
)
def test_invalid_design_specs(design_spec, message):
    with pytest.raises(ValidationError, match=message):
        DesignSpec.model_validate(design_spec)


def test_designed_sequences_accept_boltzgen_notation():
    for sequence in ("80..140", "17", "15..20AAAAAAVTTTT18PPP", "3..5C6C3", "MKTAYIAKQR"):
        DesignSpec.model_validate({"entities": [{"protein": {"ids": ["A"], "sequence": sequence}}]})


def test_status_round_trip():
    status = BoltzGenCampaignStatus.model_validate(
        {
            "phase": "Succeeded",
            "observedGeneration": 1,
            "shards": "20/20",
            "progress": {"shardsTotal": 20, "shardsSucceeded": 20, "designsRequested": 2000, "designsCompleted": 2000},
            "estimate": {"gpuHours": 12.5, "basis": "~20 s per design on an A100 (BoltzGen README figure)"},
            "results": {
                "uri": "s3://r/default/pdl1-binder/1",
                "finalDesignsUri": "s3://r/default/pdl1-binder/1/final/final_50_designs",
                "metricsCsvUri": "s3://r/default/pdl1-binder/1/final/all_designs_metrics.csv",
                "topDesigns": [{"rank": 1, "id": "design_0042", "sequence": "MKV", "metrics": {"design_iptm": 0.91}}],
            },
            "jobNames": ["pdl1-binder-design", "pdl1-binder-filter"],
            "fieldFromANewerOperator": True,
        }
    )
    assert status.phase is CampaignPhase.SUCCEEDED
    assert status.results.top_designs[0].metrics == {"design_iptm": 0.91}
    out = status.to_body()
    assert out["progress"]["designsCompleted"] == 2000
    assert out["results"]["topDesigns"][0]["rank"] == 1
    assert "fieldFromANewerOperator" not in out


# ---------------------------------------------------------------------------------------------- CRD


def test_crd_metadata_and_columns():
    crd = build_crd(CAMPAIGN_RESOURCE)
    assert crd["metadata"]["name"] == "boltzgencampaigns.boltz-operator.io"
    spec = crd["spec"]
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "BoltzGenCampaign"
    assert spec["names"]["shortNames"] == ["bgc"]
    assert spec["names"]["categories"] == ["boltz"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": (".status.phase", "string"),
        "Shards": (".status.shards", "string"),
        "Designs": (".status.progress.designsCompleted", "integer"),
        "Age": (".metadata.creationTimestamp", "date"),
    }
    root_rules = version["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    assert any("size(self.metadata.name) <= 52" == r["rule"] for r in root_rules)


def test_schema_defaults_and_int_or_string():
    nodes = schema_nodes()
    assert nodes[".spec"]["required"] == ["designSpec", "numDesigns"]
    assert nodes[".spec.modelCache"]["default"] == "default"
    assert nodes[".spec.protocol"]["enum"] == [p.value for p in Protocol]
    assert nodes[".spec.protocol"]["default"] == "protein-anything"
    assert (nodes[".spec.numDesigns"]["minimum"], nodes[".spec.numDesigns"]["maximum"]) == (1, 1_000_000)
    shards = nodes[".spec.shards"]
    assert shards["x-kubernetes-int-or-string"] is True and shards["default"] == "auto"
    assert shards["x-kubernetes-validations"][0]["rule"] == (
        "type(self) == int ? (self >= 1 && self <= 1000) : self == 'auto'"
    )
    fraction = nodes[".spec.minSuccessfulShardFraction"]
    assert (fraction["default"], fraction["minimum"], fraction["maximum"]) == (0.9, 0, 1)
    assert fraction["exclusiveMinimum"] is True
    assert nodes[".spec.stepOptions"]["default"] == {}
    assert nodes[".spec.designSpec.entities[].file.include[].chain.resIndex"]["x-kubernetes-int-or-string"] is True
    assert nodes[".status.conditions"]["x-kubernetes-list-type"] == "map"
    assert nodes[".status.results.topDesigns[].metrics"]["additionalProperties"] == {"type": "number"}


def test_cel_rules():
    spec_rules = rules_at(".spec")
    assert "!has(self.budget) || self.budget <= self.numDesigns" in spec_rules
    assert any("self.shards <= self.numDesigns" in r for r in spec_rules)
    assert any("self.parallelism <= self.shards" in r for r in spec_rules)
    joined = " ".join(spec_rules)
    for field in IMMUTABLE_FIELDS:
        assert f"self.{field} == oldSelf.{field}" in joined
    for mutable in ("parallelism", "resources", "spot", "podMetadata", "timeoutSeconds", "retriesPerShard",
                    "queueName", "priorityClassName"):  # fmt: skip
        assert f"oldSelf.{mutable}" not in joined
    assert any("exists_one" in r for r in rules_at(".spec.designSpec.entities"))
    assert rules_at(".spec.designSpec.entities[]")[0].startswith("(has(self.protein) ? 1 : 0)")
    file_rules = rules_at(".spec.designSpec.entities[].file")
    assert file_rules[0] == "(has(self.configMapKeyRef) ? 1 : 0) + (has(self.s3) ? 1 : 0) == 1"
    assert sum(".cif" in r for r in file_rules) == 2 and sum("contains('..')" in r for r in file_rules) == 2
    assert any("totalLen" in r for r in rules_at(".spec.designSpec"))
    assert rules_at(".spec.designSpec.constraints[].totalLen") == ["self.min <= self.max"]


def test_examples_round_trip():
    """The examples use only fields the schema knows (a typo would fail model_validate with extra=forbid)."""
    for name in ("campaign.yaml", "campaign-small-molecule.yaml"):
        body = load(name)
        parsed = BoltzGenCampaign.model_validate(copy.deepcopy(body)).spec.to_body()
        for key in body["spec"]:
            assert key in parsed, key

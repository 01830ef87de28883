"""The CR models: parsing examples, defaults, camelCase spelling, one-of rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from boltz_operator.api import (
    RESOURCES,
    BoltzModelCache,
    BoltzModelCacheSpec,
    BoltzModelCacheStatus,
    BoltzPrediction,
    BoltzPredictionSpec,
    BoltzPredictionStatus,
    ModelCachePhase,
    PredictionPhase,
)
from boltz_operator.api.boltz_input import MsaSource
from boltz_operator.api.common import KindStatus
from boltz_operator.api.modelcache import AccessMode
from boltz_operator.api.prediction import OutputFormat

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def minimal_spec(**extra) -> dict:
    return {"sequences": [{"protein": {"ids": ["A"], "sequence": "MKTAYIAKQR"}}], **extra}


def test_example_prediction_parses_with_defaults():
    body = load("prediction.yaml")
    prediction = BoltzPrediction.model_validate(body)
    spec = prediction.spec
    assert prediction.metadata["name"] == "egfr-erlotinib"
    assert spec.model_cache == "default"
    assert [e.entity_type for e in spec.sequences] == ["protein", "ligand"]
    assert spec.sequences[0].protein.msa.empty is True
    assert spec.sequences[1].ligand.smiles.startswith("COCCOC1")
    assert spec.affinity.binder == "B"
    assert spec.options.diffusion_samples == 1
    assert spec.options.recycling_steps == 3
    assert spec.options.sampling_steps == 200
    assert spec.options.output_format is OutputFormat.MMCIF
    assert spec.options.affinity.diffusion_samples == 5
    assert spec.options.use_kernels is True
    assert spec.timeout_seconds == 3600
    assert spec.retries == 2
    assert spec.resources.gpus is None  # the operator's default applies
    assert spec.results is None  # the operator's default store applies
    assert prediction.status.phase is None


def test_example_model_cache_parses_with_defaults():
    cache = BoltzModelCache.model_validate(load("modelcache.yaml"))
    spec = cache.spec
    assert cache.metadata["name"] == "default"
    assert spec.source.hugging_face.endpoint == "https://huggingface.co"
    assert spec.storage.size == "20Gi"
    assert spec.storage.access_modes == [AccessMode.READ_WRITE_MANY]
    assert spec.storage.existing_claim is None
    assert [b.value for b in spec.bundles] == ["boltz2"]
    assert spec.retain_volume_on_delete is True
    assert spec.populate_job.active_deadline_seconds == 7200
    assert spec.populate_job.backoff_limit == 3


def test_camel_case_in_and_out():
    spec = BoltzPredictionSpec.model_validate(
        minimal_spec(
            modelCache="weights",
            timeoutSeconds=600,
            priorityClassName="gpu-high",
            resources={"gpus": 2, "cpu": 8, "memory": "64Gi", "nodeSelector": {"gpu": "h100"}},
            results={"s3": {"uri": "s3://results/runs", "credentialsSecretRef": {"name": "s3-creds"}}},
        )
    )
    assert spec.model_cache == "weights"
    assert spec.timeout_seconds == 600
    assert spec.resources.cpu == "8"  # int-or-string quantities become strings
    assert spec.resources.node_selector == {"gpu": "h100"}
    assert spec.results.s3.credentials_secret_ref.name == "s3-creds"
    body = spec.to_body()
    assert body["modelCache"] == "weights"
    assert body["priorityClassName"] == "gpu-high"
    assert body["results"]["s3"]["credentialsSecretRef"] == {"name": "s3-creds"}
    assert "queueName" not in body  # unset optional fields are left out
    # snake_case attribute names are accepted too (populate_by_name), for building specs in code
    assert BoltzPredictionSpec(sequences=spec.sequences, model_cache="x").model_cache == "x"


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="sequnce"):
        BoltzPredictionSpec.model_validate({"sequences": [{"protein": {"ids": ["A"], "sequnce": "MK"}}]})


@pytest.mark.parametrize(
    "item, message",
    [
        ({}, "exactly one of protein, dna, rna, ligand"),
        (
            {"protein": {"ids": ["A"], "sequence": "MK"}, "ligand": {"ids": ["B"], "ccd": "ATP"}},
            "exactly one of protein, dna, rna, ligand",
        ),
        ({"ligand": {"ids": ["B"]}}, "exactly one of smiles, ccd"),
        ({"ligand": {"ids": ["B"], "smiles": "CCO", "ccd": "ATP"}}, "exactly one of smiles, ccd"),
        ({"protein": {"ids": ["A"], "sequence": "MK", "msa": {}}}, "exactly one of empty, server"),
        ({"protein": {"ids": ["A"], "sequence": "MK", "msa": {"empty": True, "server": True}}}, "exactly one of"),
        ({"protein": {"ids": [], "sequence": "MK"}}, "at least 1 item"),
        ({"protein": {"ids": ["A"], "sequence": "mk"}}, "String should match pattern"),
        ({"dna": {"ids": ["D"], "sequence": "ACGU"}}, "String should match pattern"),
        ({"protein": {"ids": ["A_1"], "sequence": "MK"}}, "String should match pattern"),
    ],
)
def test_invalid_sequence_items(item, message):
    with pytest.raises(ValidationError, match=message):
        BoltzPredictionSpec.model_validate({"sequences": [item]})


def test_msa_flag_false_does_not_count_as_a_variant():
    msa = MsaSource.model_validate({"empty": False, "configMapKeyRef": {"name": "msas", "key": "a.a3m"}})
    assert msa.config_map_key_ref.key == "a.a3m"


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"results": {}}, "exactly one of s3, pvc"),
        ({"results": {"s3": {"uri": "s3://bucket/p"}, "pvc": {"claimName": "r"}}}, "exactly one of s3, pvc"),
        ({"results": {"s3": {"uri": "http://b/p"}}}, "String should match pattern"),
        ({"options": {"diffusionSamples": 0}}, "greater than or equal to 1"),
        ({"options": {"diffusionSamples": 101}}, "less than or equal to 100"),
        ({"options": {"outputFormat": "cif"}}, "mmcif"),
        ({"resources": {"memory": "64GB"}}, "String should match pattern"),
        ({"templates": [{"cif": {}}]}, "exactly one of configMapKeyRef, s3"),
        (
            {"constraints": [{"contact": {"token1": {"chain": "A"}, "token2": {"chain": "A", "residue": 2}}}]},
            "residue, atom",
        ),
    ],
)
def test_invalid_specs(extra, message):
    with pytest.raises(ValidationError, match=message):
        BoltzPredictionSpec.model_validate(minimal_spec(**extra))


def test_model_cache_source_is_exactly_one():
    with pytest.raises(ValidationError, match="exactly one of huggingFace, s3, preloaded"):
        BoltzModelCacheSpec.model_validate({"source": {"huggingFace": {}, "preloaded": {}}})
    spec = BoltzModelCacheSpec.model_validate(
        {"source": {"preloaded": {}}, "storage": {"existingClaim": "weights"}, "retainVolumeOnDelete": False}
    )
    assert spec.source.preloaded is not None
    assert spec.storage.existing_claim == "weights"
    s3 = BoltzModelCacheSpec.model_validate(
        {"source": {"s3": {"uri": "s3://models/boltz", "endpoint": "http://minio:9000", "region": "us-east-1"}}}
    )
    assert s3.source.s3.endpoint == "http://minio:9000"


def test_prediction_status_round_trip():
    body = {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "jobName": "egfr-erlotinib-predict",
        "attempts": 1,
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:05:00Z",
        "conditions": [
            {
                "type": "Complete",
                "status": "True",
                "reason": "JobSucceeded",
                "message": "done",
                "lastTransitionTime": "2026-01-01T00:05:00Z",
                "observedGeneration": 1,
            }
        ],
        "results": {
            "uri": "s3://r/p",
            "structures": ["s3://r/p/a.cif"],
            "confidenceScore": 0.8,
            "affinityPredValue": -1.5,
        },
        "fieldFromANewerOperator": 1,  # status tolerates what this version does not know
    }
    status = BoltzPredictionStatus.model_validate(body)
    assert status.phase is PredictionPhase.SUCCEEDED
    assert status.results.confidence_score == 0.8
    assert status.conditions[0].last_transition_time.year == 2026
    out = status.to_body()
    assert out["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"
    assert out["results"]["affinityPredValue"] == -1.5
    assert "fieldFromANewerOperator" not in out


def test_model_cache_status():
    status = BoltzModelCacheStatus.model_validate(
        {
            "phase": "Ready",
            "claimName": "boltz-cache-default",
            "files": [{"path": "boltz2/boltz2_conf.ckpt", "bytes": 2_000_000_000, "sha256": "ab" * 32}],
            "totalBytes": 2_000_000_000,
            "populateDurationSeconds": 312.5,
        }
    )
    assert status.phase is ModelCachePhase.READY
    assert status.files[0].bytes == 2_000_000_000
    assert BoltzModelCacheStatus().to_body() == {"conditions": [], "files": []}


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_status_derives_the_status_base_with_its_summary_last(resource):
    assert issubclass(resource.status_model, KindStatus)
    schema = resource.status_model.model_json_schema(by_alias=True)
    assert list(schema["properties"])[:2] == ["phase", "conditions"]
    assert list(schema["properties"])[-2:] == ["message", "observedGeneration"]
    # The phase is described by its enum's docstring, which lists the phases.
    phase_enum = resource.status_model.model_fields["phase"].annotation.__args__[0]
    assert schema["$defs"][phase_enum.__name__]["description"].startswith("Pending, ")

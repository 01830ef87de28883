"""Builders are pure: typed kubernetes.client objects from pydantic models, checked without a cluster."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import BoltzModelCacheSpec, BoltzPredictionSpec
from boltz_operator.builders import modelcache as cache_builders
from boltz_operator.builders import prediction as builders
from boltz_operator.builders.common import OwnerRef
from boltz_operator.builders.results import NoResultsStore, place_results
from boltz_operator.config import DefaultResultsStore, OperatorConfig
from boltz_operator.render import render_boltz_input
from support.manifests import EXAMPLES

REF = OwnerRef(builders.KIND, "lab", "egfr", "uid-1")
CONFIG = OperatorConfig(worker_image="worker:1", gpu_resource_name="nvidia.com/gpu", default_gpus=1)


def spec(**changes) -> BoltzPredictionSpec:
    body = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())["spec"]
    body["results"] = {
        "s3": {"uri": "s3://bucket/base", "endpoint": "http://s3:8333", "credentialsSecretRef": {"name": "creds"}}
    }
    body.update(changes)
    return BoltzPredictionSpec.model_validate(body)


def build(
    s: BoltzPredictionSpec, config: OperatorConfig = CONFIG
) -> tuple[client.V1Job, client.V1ConfigMap, contract.PredictRun]:
    doc, files = render_boltz_input(s)
    results = place_results(s.results, config.default_results, REF.namespace, REF.name, REF.uid)
    run = builders.build_run(REF, s, files, results)
    return (
        builders.build_job(REF, s, run, files, results, "default-models", config),
        builders.build_configmap(REF, doc, run),
        run,
    )


def test_the_job_mounts_the_cache_read_only_and_mounts_no_token():
    job, _, _ = build(spec())
    pod = job.spec.template.spec
    [container] = pod.containers
    models = next(v for v in pod.volumes if v.name == "models")
    assert models.persistent_volume_claim.read_only is True
    assert next(m for m in container.volume_mounts if m.mount_path == "/models").read_only is True
    assert pod.automount_service_account_token is False
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.capabilities.drop == ["ALL"]
    assert pod.security_context.run_as_non_root is True


def test_gpus_cpu_and_memory_come_from_the_spec_else_the_operator_defaults():
    job, _, _ = build(spec())
    assert job.spec.template.spec.containers[0].resources.limits == {
        "cpu": "8",
        "memory": "64Gi",
        "nvidia.com/gpu": "1",
    }
    job, _, _ = build(
        spec(resources={"gpus": 2, "cpu": 16, "memory": "128Gi"}),
        CONFIG.model_copy(update={"gpu_resource_name": "amd.com/gpu"}),
    )
    assert job.spec.template.spec.containers[0].resources.limits == {"cpu": "16", "memory": "128Gi", "amd.com/gpu": "2"}


def test_the_failure_policy_fails_fast_on_the_workers_permanent_exit_codes_and_ignores_disruptions():
    job, _, _ = build(spec())
    ignore, fail = job.spec.pod_failure_policy.rules
    assert fail.action == "FailJob" and fail.on_exit_codes.values == [10, 11, 12, 15, 16, 17, 18, 137]
    assert fail.on_exit_codes.container_name == "worker"
    assert ignore.action == "Ignore" and ignore.on_pod_conditions[0].type == "DisruptionTarget"
    assert job.spec.backoff_limit == 2 and job.spec.active_deadline_seconds == 3600


def test_the_run_names_the_input_after_the_prediction_and_results_go_under_namespace_name_uid():
    _, configmap, run = build(spec())
    assert run.record_id == "egfr" and run.input_file == "egfr.yaml"
    assert run.results.uri == "s3://bucket/base/lab/egfr/uid-1"
    assert run.results.s3 == contract.S3Target(
        bucket="bucket", prefix="base/lab/egfr/uid-1", endpoint_url="http://s3:8333"
    )
    assert set(configmap.data) == {"run.json", "egfr.yaml"}
    assert configmap.metadata.owner_references[0].uid == "uid-1"
    assert yaml.safe_load(configmap.data["egfr.yaml"])["properties"] == [{"affinity": {"binder": "B"}}]


def test_configmap_and_secret_inputs_are_projected_in_place_and_s3_inputs_downloaded():
    s = spec(
        sequences=[
            {
                "protein": {
                    "ids": ["A"],
                    "sequence": "MKTAYIAKQR",
                    "msa": {"configMapKeyRef": {"name": "msas", "key": "a.a3m"}},
                }
            },
            {
                "protein": {
                    "ids": ["C"],
                    "sequence": "MKTAYIAKQW",
                    "msa": {"secretKeyRef": {"name": "private", "key": "c.csv"}},
                }
            },
            {"protein": {"ids": ["D"], "sequence": "MKTAYIAKQY", "msa": {"s3": {"uri": "s3://inputs/d.a3m"}}}},
            {"ligand": {"ids": ["B"], "smiles": "CCO"}},
        ]
    )
    job, _, run = build(s)
    config_volume = next(v for v in job.spec.template.spec.volumes if v.name == "run-config")
    sources = config_volume.projected.sources
    assert sources[1].config_map.name == "msas" and sources[1].config_map.items[0].path == "inputs/msa-A.a3m"
    assert sources[2].secret.name == "private" and sources[2].secret.items[0].path == "inputs/msa-C.csv"
    assert run.downloads == [
        contract.S3Download(uri="s3://inputs/d.a3m", dest="/work/inputs/msa-D.a3m", endpoint_url="http://s3:8333")
    ]


def test_a_queue_name_becomes_the_kueue_label_and_pod_metadata_reaches_the_pods():
    job, _, _ = build(spec(queueName="gpu-queue", podMetadata={"labels": {"team": "x"}, "annotations": {"a": "b"}}))
    assert job.metadata.labels["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job.spec.template.metadata.labels["team"] == "x"
    assert job.spec.template.metadata.annotations == {"a": "b"}
    assert job.spec.suspend is None, "the operator never sets or rewrites suspend: Kueue owns it"


def test_results_fall_back_to_the_operator_default_and_a_missing_store_is_an_error():
    pvc = place_results(None, DefaultResultsStore(pvc_claim_name="results", pvc_sub_path="runs"), "lab", "egfr", "u")
    assert pvc.target == contract.ResultsTarget(
        uri="pvc://results/runs/lab/egfr/u", local_dir="/results/runs/lab/egfr/u"
    )
    assert pvc.volumes[0].persistent_volume_claim.claim_name == "results"
    with pytest.raises(NoResultsStore, match="set spec.results"):
        place_results(None, DefaultResultsStore(), "lab", "egfr", "u")


def test_the_populate_job_is_the_only_writer_of_the_cache_and_is_named_by_generation():
    cache_spec = BoltzModelCacheSpec.model_validate(
        {"source": {"huggingFace": {"endpoint": "https://mirror.example/"}}}
    )
    ref = OwnerRef(cache_builders.KIND, "lab", "default", "u", 3)
    job = cache_builders.build_job(ref, cache_spec, CONFIG)
    assert job.metadata.name == "default-populate-3"
    mount = next(m for m in job.spec.template.spec.containers[0].volume_mounts if m.mount_path == "/models")
    assert not mount.read_only
    run = cache_builders.build_run(cache_spec)
    assert run.source.huggingface.endpoint == "https://mirror.example"
    pvc = cache_builders.build_pvc(ref, cache_spec)
    assert pvc.metadata.owner_references is None, "by default the PVC outlives the cache resource"
    owned = cache_builders.build_pvc(ref, cache_spec.model_copy(update={"retain_volume_on_delete": False}))
    assert owned.metadata.owner_references[0].uid == "u"


def test_the_populate_run_gets_every_bundle_the_cache_asks_for():
    from boltz_operator.api.modelcache import Bundle
    from boltz_worker.model_cache.model_catalog import BUNDLES

    assert {b.value for b in Bundle} == set(BUNDLES)  # the CRD's enum is what the worker can populate
    for bundles in (["boltzgen"], ["boltz2", "boltzgen"]):
        cache_spec = BoltzModelCacheSpec.model_validate({"source": {"s3": {"uri": "s3://weights/mirror"}},
                                                         "bundles": bundles})  # fmt: skip
        run = cache_builders.build_run(cache_spec)
        assert run.bundles == bundles and run.source.s3.prefix == "mirror"
        ref = OwnerRef(cache_builders.KIND, "lab", "gen", "u", 1)
        shipped = contract.PopulateRun.model_validate_json(
            cache_builders.build_configmap(ref, run).data[contract.RUN_FILE]
        )
        assert shipped.bundles == bundles
    with pytest.raises(ValueError):
        BoltzModelCacheSpec.model_validate({"source": {"preloaded": {}}, "bundles": ["boltz1"]})

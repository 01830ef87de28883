"""BoltzGenCampaign children, built without a cluster: the run ConfigMap, the Indexed design Job, the filter Job,
and the runs (DesignRun / FilterRun) the worker reads from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_operator.api.campaign import MAX_TOP_DESIGNS, BoltzGenCampaignSpec, StepOptions
from boltz_operator.api.design_spec import MAX_STRUCTURE_FILE_BYTES
from boltz_operator.builders import campaign as builders
from boltz_operator.builders.common import KUEUE_QUEUE_LABEL, OwnerRef
from boltz_operator.builders.results import place_results
from boltz_operator.config import DefaultResultsStore, OperatorConfig
from boltz_operator.render import render_design_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
REF = OwnerRef(builders.KIND, "lab", "pdl1", "uid-7")
CONFIG = OperatorConfig(
    worker_image="worker:1",
    boltzgen_worker_image="worker-boltzgen:1",
    gpu_resource_name="nvidia.com/gpu",
    default_gpus=1,
)
S3_RESULTS = {
    "s3": {
        "uri": "s3://bucket/campaigns",
        "endpoint": "http://s3:8333",
        "region": "eu-1",
        "credentialsSecretRef": {"name": "creds"},
    }
}
SPOT_KEYS = {
    "cloud.google.com/gke-spot",
    "cloud.google.com/gke-preemptible",
    "kubernetes.azure.com/scalesetpriority",
    "eks.amazonaws.com/capacityType",
    "karpenter.sh/capacity-type",
}


def spec(example: str = "campaign.yaml", **changes) -> BoltzGenCampaignSpec:
    body = yaml.safe_load((EXAMPLES / example).read_text())["spec"]
    body["results"] = S3_RESULTS
    body.update(changes)
    return BoltzGenCampaignSpec.model_validate(body)


def minimal(**changes) -> BoltzGenCampaignSpec:
    body = {
        "designSpec": {"entities": [{"protein": {"ids": ["A"], "sequence": "50"}}]},
        "numDesigns": 100,
        "results": S3_RESULTS,
        **changes,
    }
    return BoltzGenCampaignSpec.model_validate(body)


def parts(s: BoltzGenCampaignSpec, config: OperatorConfig = CONFIG):
    doc, files = render_design_spec(s.design_spec)
    results = place_results(s.results, config.default_results, REF.namespace, REF.name, REF.uid)
    return doc, files, results


def design_job(s: BoltzGenCampaignSpec, config: OperatorConfig = CONFIG) -> client.V1Job:
    _, files, results = parts(s, config)
    return builders.build_design_job(REF, s, files, results, "boltzgen-models", config)


def filter_job(s: BoltzGenCampaignSpec, config: OperatorConfig = CONFIG) -> client.V1Job:
    _, files, results = parts(s, config)
    return builders.build_filter_job(REF, s, files, results, "boltzgen-models", config)


# ---------------------------------------------------------------------------------------------- shard arithmetic


@pytest.mark.parametrize(
    ("fraction", "shards", "needed"),
    [
        (0.9, 10, 9),
        (0.9, 4, 4),
        (1.0, 7, 7),
        (0.01, 3, 1),
        (0.5, 5, 3),
        (0.5, 4, 2),
        (0.3, 10, 3),
        (0.7, 10, 7),
        (0.9, 20, 18),
        (0.95, 200, 190),
        (1.0, 1, 1),
        (0.1, 1, 1),
    ],
)
def test_min_successful_shards_is_the_fraction_rounded_up_and_at_least_one(fraction, shards, needed):
    s = minimal(numDesigns=1000, shards=shards, minSuccessfulShardFraction=fraction)
    assert builders.min_successful_shards(s) == needed


def test_names():
    assert builders.job_name("pdl1", builders.DESIGN) == "pdl1-design"
    assert builders.job_name("pdl1", builders.FILTER) == "pdl1-filter"
    assert builders.configmap_name("pdl1") == "pdl1-campaign-run"


# ---------------------------------------------------------------------------------------------- options


def test_step_options_map_to_boltzgens_flags():
    step = StepOptions.model_validate({
        "diffusionBatchSize": 4, "stepScale": 1.8, "noiseScale": 0.95, "inverseFoldNumSequences": 3,
        "inverseFoldAvoid": "CM", "alpha": 0.2, "filterBiased": False, "refoldingRmsdThreshold": 2.5,
        "additionalFilters": [{"metric": "design_ALA", "operator": ">", "threshold": 0.5},
                              {"metric": "filter_rmsd_design", "operator": "<", "threshold": 2},
                              {"metric": "plip_hbonds_refolded", "operator": ">", "threshold": 1e-4}],
        "metricsOverride": [{"metric": "plip_hbonds_refolded", "weight": 4}, {"metric": "delta_sasa_refolded"}],
        "sizeBuckets": [{"minLength": 80, "maxLength": 100, "count": 10}, {"minLength": 101, "maxLength": 140, "count": 5}],
    })  # fmt: skip
    assert builders.design_options(step) == contract.DesignOptions(
        diffusion_batch_size=4, step_scale=1.8, noise_scale=0.95, inverse_fold_num_sequences=3, inverse_fold_avoid="CM"
    )
    assert builders.filter_options(step) == contract.FilterOptions(
        alpha=0.2, filter_biased=False, refolding_rmsd_threshold=2.5,
        additional_filters=["design_ALA>0.5", "filter_rmsd_design<2", "plip_hbonds_refolded>0.0001"],
        metrics_override={"plip_hbonds_refolded": 4.0, "delta_sasa_refolded": None},
        size_buckets=["80-100:10", "101-140:5"])  # fmt: skip


def test_an_empty_inverse_fold_avoid_is_passed_on_not_dropped():
    # "" lets inverse folding use cysteine under the peptide/nanobody/antibody protocols (whose default avoids C);
    # None would leave boltzgen's default in place.
    assert builders.design_options(StepOptions(inverse_fold_avoid="")).inverse_fold_avoid == ""
    assert builders.design_options(StepOptions()).inverse_fold_avoid is None


@pytest.mark.parametrize("threshold", [0.1234567, 1234567.0, 2.5e-7, -0.75, 0.3, 100.0, 1 / 3])
def test_filter_thresholds_reach_boltzgen_unrounded(threshold):
    # boltzgen splits 'metric>threshold' at the operator and float()s the rest: it must read back the same number.
    step = StepOptions.model_validate(
        {"additionalFilters": [{"metric": "design_iptm", "operator": ">", "threshold": threshold}]}
    )
    [text] = builders.filter_options(step).additional_filters
    metric, value = text.split(">", 1)
    assert metric == "design_iptm" and float(value) == threshold


def test_omitted_step_options_keep_boltzgens_defaults():
    assert builders.design_options(StepOptions()) == contract.DesignOptions()
    assert builders.design_options(StepOptions()).inverse_fold_num_sequences == 1
    options = builders.filter_options(StepOptions())
    assert options == contract.FilterOptions() and options.filter_biased is True
    assert (options.additional_filters, options.metrics_override, options.size_buckets) == (None, None, None)
    assert builders.filter_options(StepOptions(filter_biased=True)).filter_biased is True


# ---------------------------------------------------------------------------------------------- runs


def test_numdesigns_is_split_over_shards_and_the_worker_makes_exactly_numdesigns():
    s = minimal(numDesigns=103, shards=10)
    _, files, results = parts(s)
    run = builders.build_design_run(s, files, results)
    assert (run.num_designs, run.extra_design_shards) == (10, 3)
    per_shard = [run.designs_in_shard(i) for i in range(10)]
    assert per_shard == [11, 11, 11] + [10] * 7 and sum(per_shard) == 103
    assert per_shard == [s.designs_in_shard(i) for i in range(10)]  # the API's split and the worker's agree


@pytest.mark.parametrize(
    ("designs", "shards"), [(2000, 20), (7, 7), (1, 1), (1_000_000, "auto"), (12345, 200), (99, 98)]
)
def test_every_split_sums_to_numdesigns(designs, shards):
    s = minimal(numDesigns=designs, shards=shards)
    _, files, results = parts(s)
    run = builders.build_design_run(s, files, results)
    counts = [run.designs_in_shard(i) for i in range(s.shard_count)]
    assert sum(counts) == designs and max(counts) - min(counts) <= 1 and min(counts) >= 1


def test_the_design_run_for_the_binder_example():
    s = spec()
    _, files, results = parts(s)
    run = builders.build_design_run(s, files, results)
    assert run.spec_file == builders.SPEC_FILE and run.protocol == "protein-anything"
    assert (run.num_designs, run.extra_design_shards, run.shard_index) == (100, 0, None)  # index from the Job
    assert run.results == contract.ResultsTarget(
        uri="s3://bucket/campaigns/lab/pdl1/uid-7",
        s3=contract.S3Target(bucket="bucket", prefix="campaigns/lab/pdl1/uid-7", endpoint_url="http://s3:8333",
                             region="eu-1"))  # fmt: skip
    assert run.downloads == []  # its target comes from a ConfigMap


def test_the_filter_run_carries_shards_minimum_budget_and_options():
    s = spec()
    _, files, results = parts(s)
    run = builders.build_filter_run(s, files, results)
    assert (run.spec_file, run.protocol, run.num_shards, run.min_shards, run.budget) == (
        builders.SPEC_FILE,
        "protein-anything",
        20,
        18,
        50,
    )
    assert run.top_designs == MAX_TOP_DESIGNS
    assert run.options == contract.FilterOptions(alpha=0.001, refolding_rmsd_threshold=2.5)
    assert run.results.uri == "s3://bucket/campaigns/lab/pdl1/uid-7"
    small = spec("campaign-small-molecule.yaml", budget=None)
    _, files, results = parts(small)
    run = builders.build_filter_run(small, files, results)
    assert (run.protocol, run.num_shards, run.min_shards, run.budget) == ("protein-small_molecule", 10, 9, 30)
    assert run.options.additional_filters == ["design_ALA<0.3"]


def test_s3_targets_are_downloaded_with_the_results_stores_endpoint_and_a_size_cap():
    s = minimal(designSpec={"entities": [
        {"protein": {"ids": ["B"], "sequence": "80..140"}},
        {"file": {"s3": {"uri": "s3://targets/pdl1/6m1u.cif"}, "include": [{"chain": {"id": "A"}}]}},
        {"file": {"configMapKeyRef": {"name": "other", "key": "x.pdb"}}},
    ]})  # fmt: skip
    doc, files, results = parts(s)
    expected = [
        contract.S3Download(
            uri="s3://targets/pdl1/6m1u.cif",
            dest="/work/inputs/target-1.cif",
            endpoint_url="http://s3:8333",
            region="eu-1",
            max_bytes=MAX_STRUCTURE_FILE_BYTES,
        )
    ]
    assert builders.build_design_run(s, files, results).downloads == expected
    assert builders.build_filter_run(s, files, results).downloads == expected  # boltzgen reads the spec again
    assert doc["entities"][1]["file"]["path"] == expected[0].dest  # where the spec says
    assert MAX_STRUCTURE_FILE_BYTES == 64 * 1024 * 1024


def test_the_configmap_holds_the_spec_and_both_runs_and_is_immutable_and_owned():
    s = minimal(
        designSpec={
            "entities": [
                {"protein": {"ids": ["B"], "sequence": "80..140"}},
                {"file": {"s3": {"uri": "s3://targets/6m1u.cif"}}},
            ]
        },
        numDesigns=30,
        shards=4,
    )
    doc, files, results = parts(s)
    design_run = builders.build_design_run(s, files, results)
    filter_run = builders.build_filter_run(s, files, results)
    configmap = builders.build_configmap(REF, doc, design_run, filter_run)
    assert configmap.metadata.name == "pdl1-campaign-run" and configmap.metadata.namespace == "lab"
    assert configmap.immutable is True
    assert configmap.metadata.owner_references[0].uid == "uid-7" and configmap.metadata.owner_references[0].controller
    assert set(configmap.data) == {"design-spec.yaml", "design-run.json", "filter-run.json"}
    assert yaml.safe_load(configmap.data["design-spec.yaml"]) == doc
    shipped = contract.RUN_ADAPTER.validate_json(configmap.data["design-run.json"])
    assert shipped == design_run and isinstance(shipped, contract.DesignRun)
    assert (shipped.num_designs, shipped.extra_design_shards) == (7, 2)
    assert shipped.downloads[0].max_bytes == MAX_STRUCTURE_FILE_BYTES
    shipped_filter = contract.RUN_ADAPTER.validate_json(configmap.data["filter-run.json"])
    assert shipped_filter == filter_run and isinstance(shipped_filter, contract.FilterRun)
    assert json.loads(configmap.data["filter-run.json"])["min_shards"] == 4  # 0.9 of 4, rounded up


# ---------------------------------------------------------------------------------------------- jobs


def test_the_design_job_is_indexed_one_index_per_shard_with_per_index_retries():
    s = spec(retriesPerShard=3)  # 20 shards, parallelism 10, fraction 0.9
    job = design_job(s)
    assert job.metadata.name == "pdl1-design" and job.metadata.namespace == "lab"
    assert job.metadata.owner_references[0].kind == "BoltzGenCampaign"
    assert job.spec.completion_mode == "Indexed"
    assert (job.spec.completions, job.spec.parallelism) == (20, 10)
    assert job.spec.backoff_limit_per_index == 3
    assert job.spec.max_failed_indexes == 2  # 20 - 18
    assert job.spec.backoff_limit is None  # per index instead: a Job-wide limit would cut retries short
    assert job.spec.active_deadline_seconds == 86400
    assert job.spec.ttl_seconds_after_finished == CONFIG.job_ttl_seconds
    pod = job.spec.template.spec
    [container] = pod.containers
    assert container.command == ["boltz-worker", "design"]
    assert container.image == "worker-boltzgen:1"
    assert ("HF_HUB_OFFLINE", "1") in [(e.name, e.value) for e in container.env]
    assert [e.name for e in container.env if e.value_from] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert container.resources.limits == {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "1"}
    assert job.spec.template.metadata.labels["app.kubernetes.io/component"] == "design"
    ignore, fail_job, fail_index = job.spec.pod_failure_policy.rules
    assert fail_job.action == "FailJob" and fail_job.on_exit_codes.values == [10, 11, 15, 16]
    # Out of memory (GPU, host, the container's limit) ends the shard, not the campaign.
    assert fail_index.action == "FailIndex" and fail_index.on_exit_codes.values == [12, 17, 18, 137]
    assert ignore.action == "Ignore" and ignore.on_pod_conditions[0].type == "DisruptionTarget"


def test_the_filter_job_fails_at_once_on_every_fail_fast_code():
    job = filter_job(minimal())
    ignore, fail_job = job.spec.pod_failure_policy.rules
    assert fail_job.action == "FailJob" and fail_job.on_exit_codes.values == [10, 11, 12, 15, 16, 17, 18, 137]
    assert ignore.action == "Ignore"


@pytest.mark.parametrize(("fraction", "shards", "max_failed"), [(1.0, 7, 0), (0.01, 3, 2), (0.9, 10, 1), (0.5, 5, 2)])
def test_max_failed_indexes_is_what_the_fraction_allows(fraction, shards, max_failed):
    job = design_job(minimal(numDesigns=100, shards=shards, minSuccessfulShardFraction=fraction))
    assert job.spec.max_failed_indexes == max_failed and job.spec.completions == shards


def test_parallelism_defaults_to_all_shards():
    job = design_job(minimal(numDesigns=1000))  # auto: 10 shards
    assert (job.spec.completions, job.spec.parallelism) == (10, 10)
    assert design_job(minimal(numDesigns=1000, shards=8, parallelism=3)).spec.parallelism == 3


def test_the_filter_job_is_one_gpu_pod_running_filter():
    s = spec(resources={"gpus": 4, "cpu": 16, "memory": "96Gi"}, timeoutSeconds=7200, retriesPerShard=1)
    job = filter_job(s)
    assert job.metadata.name == "pdl1-filter"
    assert job.spec.completion_mode is None and job.spec.completions is None and job.spec.parallelism is None
    assert job.spec.backoff_limit_per_index is None and job.spec.max_failed_indexes is None
    assert job.spec.backoff_limit == 1 and job.spec.active_deadline_seconds == 7200
    [container] = job.spec.template.spec.containers
    assert container.command == ["boltz-worker", "filter"]
    assert container.resources.limits["nvidia.com/gpu"] == "4"  # as the shard pods: resources.gpus
    assert container.resources.requests == {"cpu": "16", "memory": "96Gi", "nvidia.com/gpu": "4"}
    assert job.spec.template.metadata.labels["app.kubernetes.io/component"] == "filter"
    assert design_job(s).spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"] == "4"


def test_spot_adds_the_spot_tolerations_to_the_gpu_ones():
    tolerations = design_job(spec()).spec.template.spec.tolerations  # the binder example has spot: true
    keys = [t.key for t in tolerations]
    assert keys[0] == "nvidia.com/gpu" and set(keys[1:]) == SPOT_KEYS and len(keys) == 6
    assert all(t.effect == "NoSchedule" for t in tolerations)
    assert {t.key for t in filter_job(spec()).spec.template.spec.tolerations} == SPOT_KEYS | {"nvidia.com/gpu"}
    own = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    plain = design_job(spec(spot=False, resources={"tolerations": [own], "nodeSelector": {"pool": "a100"}}))
    assert [t.key for t in plain.spec.template.spec.tolerations] == ["nvidia.com/gpu", "dedicated"]
    assert plain.spec.template.spec.node_selector == {"pool": "a100"}


def test_a_queue_name_becomes_the_kueue_label_on_both_jobs():
    s = spec(queueName="gpu-queue", priorityClassName="batch-low", podMetadata={"labels": {"team": "x"}})
    for job in (design_job(s), filter_job(s)):
        assert job.metadata.labels[KUEUE_QUEUE_LABEL] == "gpu-queue"
        assert job.spec.template.spec.priority_class_name == "batch-low"
        assert job.spec.template.metadata.labels["team"] == "x"
        assert job.spec.suspend is None  # Kueue owns suspend
    assert KUEUE_QUEUE_LABEL not in design_job(spec()).metadata.labels
    default_queue = CONFIG.model_copy(update={"default_queue_name": "shared"})
    assert design_job(spec(), default_queue).metadata.labels[KUEUE_QUEUE_LABEL] == "shared"


def test_the_config_volume_projects_this_steps_run_the_spec_and_configmap_targets():
    s = minimal(designSpec={"entities": [
        {"protein": {"ids": ["B"], "sequence": "80..140"}},
        {"file": {"configMapKeyRef": {"name": "targets", "key": "6m1u.cif"}}},
        {"file": {"s3": {"uri": "s3://targets/x.cif"}}},
        {"file": {"configMapKeyRef": {"name": "more", "key": "t.PDB"}}},
    ]})  # fmt: skip
    for job, run_key in ((design_job(s), "design-run.json"), (filter_job(s), "filter-run.json")):
        pod = job.spec.template.spec
        volume = next(v for v in pod.volumes if v.name == "run-config")
        own, *targets = volume.projected.sources
        assert own.config_map.name == "pdl1-campaign-run"
        assert [(i.key, i.path) for i in own.config_map.items] == [
            (run_key, "run.json"),
            ("design-spec.yaml", "design-spec.yaml"),
        ]
        # Only ConfigMap targets are projected, under inputs/ with the renderer's names; the S3 one is downloaded.
        assert [(t.config_map.name, [(i.key, i.path) for i in t.config_map.items]) for t in targets] == [
            ("targets", [("6m1u.cif", "inputs/target-1.cif")]),
            ("more", [("t.PDB", "inputs/target-3.pdb")]),
        ]
        [container] = pod.containers
        mounts = {m.mount_path: m for m in container.volume_mounts}
        assert mounts[contract.CONFIG_DIR].name == "run-config" and mounts[contract.CONFIG_DIR].read_only
        assert mounts[contract.MODELS_DIR].read_only
        models = next(v for v in pod.volumes if v.name == "models")
        assert models.persistent_volume_claim.claim_name == "boltzgen-models"
        assert models.persistent_volume_claim.read_only is True
        assert pod.automount_service_account_token is False


def test_a_pvc_results_store_is_mounted_and_s3_targets_then_use_the_default_endpoint():
    s = minimal(
        results={"pvc": {"claimName": "results", "subPath": "runs"}},
        designSpec={
            "entities": [{"protein": {"ids": ["B"], "sequence": "80"}}, {"file": {"s3": {"uri": "s3://targets/x.cif"}}}]
        },
    )
    _, files, results = parts(s)
    run = builders.build_design_run(s, files, results)
    assert run.results == contract.ResultsTarget(
        uri="pvc://results/runs/lab/pdl1/uid-7", local_dir="/results/runs/lab/pdl1/uid-7"
    )
    assert run.downloads == [
        contract.S3Download(
            uri="s3://targets/x.cif", dest="/work/inputs/target-1.cif", max_bytes=MAX_STRUCTURE_FILE_BYTES
        )
    ]
    pod = design_job(s).spec.template.spec
    assert next(v for v in pod.volumes if v.name == "results").persistent_volume_claim.claim_name == "results"
    default = CONFIG.model_copy(update={"default_results": DefaultResultsStore(pvc_claim_name="shared")})
    s_default = minimal(results=None)
    assert parts(s_default, default)[2].target.uri == "pvc://shared/lab/pdl1/uid-7"

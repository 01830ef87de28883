"""The children of a BoltzGenCampaign: the run ConfigMap, the design Job (Indexed: one index per shard) and the
filter Job (one pod: merge the complete shards, rank, select the budget).

Both Jobs read the same ConfigMap: the rendered design spec, and one run file each, projected as run.json.
"""

from __future__ import annotations

import math

import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import CAMPAIGN_RESOURCE
from boltz_operator.api.campaign import MAX_TOP_DESIGNS, BoltzGenCampaignSpec, StepOptions
from boltz_operator.api.design_spec import MAX_STRUCTURE_FILE_BYTES
from boltz_operator.builders.common import (
    CONFIG_VOLUME,
    OOM_KILLED_EXIT_CODE,
    OwnerRef,
    WorkerPod,
    failure_policy,
    gpu_placement,
    run_mounts,
    run_volumes,
    worker_job,
)
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.config import OperatorConfig
from boltz_operator.render import InputFileRef

KIND = CAMPAIGN_RESOURCE.kind
DESIGN = "design"
FILTER = "filter"
SPEC_FILE = "design-spec.yaml"
RUN_KEYS = {DESIGN: "design-run.json", FILTER: "filter-run.json"}
# Out of memory (GPU, host, the container's limit) ends the shard, not the campaign: minSuccessfulShardFraction decides.
SHARD_FAIL_INDEX_CODES = frozenset(
    {
        int(contract.ExitCode.GPU_OUT_OF_MEMORY),
        int(contract.ExitCode.HOST_OUT_OF_MEMORY),
        int(contract.ExitCode.MEMORY_LIMIT_EXCEEDED),
        OOM_KILLED_EXIT_CODE,
    }
)


def job_name(name: str, step: str) -> str:
    return f"{name}-{step}"


def configmap_name(name: str) -> str:
    return f"{name}-campaign-run"


def min_successful_shards(spec: BoltzGenCampaignSpec) -> int:
    """Shards that must succeed for the campaign to go on: minSuccessfulShardFraction of them, rounded up."""
    # The small epsilon keeps 0.9 x 10 at 9 (floating point makes it 9.000000000000002).
    return max(1, math.ceil(spec.min_successful_shard_fraction * spec.shard_count - 1e-9))


def design_options(step: StepOptions) -> contract.DesignOptions:
    return contract.DesignOptions(
        diffusion_batch_size=step.diffusion_batch_size,
        step_scale=step.step_scale,
        noise_scale=step.noise_scale,
        inverse_fold_num_sequences=step.inverse_fold_num_sequences or 1,
        inverse_fold_avoid=step.inverse_fold_avoid,
    )


def filter_options(step: StepOptions) -> contract.FilterOptions:
    return contract.FilterOptions(
        alpha=step.alpha,
        filter_biased=step.filter_biased if step.filter_biased is not None else True,
        refolding_rmsd_threshold=step.refolding_rmsd_threshold,
        additional_filters=[f"{f.metric}{f.operator.value}{_number(f.threshold)}" for f in step.additional_filters]
        if step.additional_filters
        else None,
        metrics_override={m.metric: m.weight for m in step.metrics_override} if step.metrics_override else None,
        size_buckets=[f"{b.min_length}-{b.max_length}:{b.count}" for b in step.size_buckets]
        if step.size_buckets
        else None,
    )


def _number(value: float) -> str:
    """A threshold as boltzgen parses it back (float()): short where exact (2, 0.5), never rounded (:g keeps only 6
    significant digits: 0.1234567 would become 0.123457)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _downloads(files: list[InputFileRef], results: ResultsPlacement) -> list[contract.S3Download]:
    return [
        f.s3_download(results.s3_endpoint, results.s3_region).model_copy(update={"max_bytes": MAX_STRUCTURE_FILE_BYTES})
        for f in files
        if f.source == "s3"
    ]


def build_design_run(
    spec: BoltzGenCampaignSpec, files: list[InputFileRef], results: ResultsPlacement
) -> contract.DesignRun:
    per_shard, extra = divmod(spec.num_designs, spec.shard_count)
    return contract.DesignRun(
        spec_file=SPEC_FILE,
        protocol=spec.protocol.value,
        num_designs=per_shard,
        extra_design_shards=extra,
        options=design_options(spec.step_options),
        downloads=_downloads(files, results),
        results=results.target,
    )


def build_filter_run(
    spec: BoltzGenCampaignSpec, files: list[InputFileRef], results: ResultsPlacement
) -> contract.FilterRun:
    return contract.FilterRun(
        spec_file=SPEC_FILE,
        protocol=spec.protocol.value,
        num_shards=spec.shard_count,
        min_shards=min_successful_shards(spec),
        budget=spec.effective_budget,
        options=filter_options(spec.step_options),
        top_designs=MAX_TOP_DESIGNS,
        downloads=_downloads(files, results),
        results=results.target,
    )


def build_configmap(
    ref: OwnerRef, spec_doc: dict, design_run: contract.DesignRun, filter_run: contract.FilterRun
) -> client.V1ConfigMap:
    """Owned by the campaign and created before the Jobs: a pod never waits on a missing volume."""
    return client.V1ConfigMap(
        metadata=ref.child_meta(configmap_name(ref.name), DESIGN),
        data={
            SPEC_FILE: yaml.safe_dump(spec_doc, sort_keys=False),
            RUN_KEYS[DESIGN]: design_run.model_dump_json(indent=2),
            RUN_KEYS[FILTER]: filter_run.model_dump_json(indent=2),
        },
        immutable=True,
    )


def build_design_job(
    ref: OwnerRef,
    spec: BoltzGenCampaignSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    cache_claim: str,
    config: OperatorConfig,
) -> client.V1Job:
    """An Indexed Job: index i is shard i. Each index retries on its own (backoffLimitPerIndex); once more shards have
    failed than minSuccessfulShardFraction allows, maxFailedIndexes stops the rest: no GPU spent on a lost cause.
    Invalid input and an unusable cache still fail the whole Job at once: every shard would fail the same way."""
    shards = spec.shard_count
    job = _job(ref, spec, DESIGN, files, results, cache_claim, config)
    job.spec.backoff_limit = None  # per index instead
    job.spec.completion_mode = "Indexed"
    job.spec.completions = shards
    job.spec.parallelism = min(spec.parallelism or shards, shards)
    job.spec.backoff_limit_per_index = spec.retries_per_shard
    job.spec.max_failed_indexes = shards - min_successful_shards(spec)
    # Out of GPU memory is final for a shard (its retry would run the same sizes on the same GPU type) but not for
    # the campaign: the sampled lengths differ from shard to shard, and minSuccessfulShardFraction decides. Out of
    # host memory (analysis processes killed, designs lost) likewise: a retry asks for the same memory.
    job.spec.pod_failure_policy = failure_policy(fail_index_codes=SHARD_FAIL_INDEX_CODES)
    return job


def build_filter_job(
    ref: OwnerRef,
    spec: BoltzGenCampaignSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    cache_claim: str,
    config: OperatorConfig,
) -> client.V1Job:
    """One pod, one GPU (boltzgen checks for CUDA before any step, filtering included)."""
    job = _job(ref, spec, FILTER, files, results, cache_claim, config)
    job.spec.backoff_limit = spec.retries_per_shard
    return job


def _job(
    ref: OwnerRef,
    spec: BoltzGenCampaignSpec,
    step: str,
    files: list[InputFileRef],
    results: ResultsPlacement,
    cache_claim: str,
    config: OperatorConfig,
) -> client.V1Job:
    placement = gpu_placement(spec.resources, spec.tolerations, spec.queue_name, config)
    pod = WorkerPod.placed(
        placement,
        image=config.boltzgen_worker_image,
        command=["boltz-worker", step],
        env=[client.V1EnvVar(name="HF_HUB_OFFLINE", value="1"), *results.env],
        mounts=run_mounts(results.mounts),
        volumes=run_volumes(_config_volume(ref, step, files), cache_claim, results.volumes),
        image_pull_policy=config.image_pull_policy,
        service_account=config.worker_service_account,
        pod_metadata=spec.pod_metadata,
        priority_class_name=spec.priority_class_name,
        runtime_class_name=config.runtime_class_name,
    )
    return worker_job(
        ref,
        job_name(ref.name, step),
        step,
        pod,
        backoff_limit=0,
        active_deadline_seconds=spec.timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
        queue_name=placement.queue_name,
    )


def _config_volume(ref: OwnerRef, step: str, files: list[InputFileRef]) -> client.V1Volume:
    """run.json (this step's run), the design spec, and the ConfigMap-held target structures under inputs/."""
    sources = [
        client.V1VolumeProjection(
            config_map=client.V1ConfigMapProjection(
                name=configmap_name(ref.name),
                items=[
                    client.V1KeyToPath(key=RUN_KEYS[step], path=contract.RUN_FILE),
                    client.V1KeyToPath(key=SPEC_FILE, path=SPEC_FILE),
                ],
            )
        )
    ]
    for f in files:
        if f.source == "configMap":
            sources.append(
                client.V1VolumeProjection(
                    config_map=client.V1ConfigMapProjection(
                        name=f.name, items=[client.V1KeyToPath(key=f.key, path=f"inputs/{f.file_name}")]
                    )
                )
            )
    return client.V1Volume(name=CONFIG_VOLUME, projected=client.V1ProjectedVolumeSource(sources=sources))

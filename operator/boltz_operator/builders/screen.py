"""The children of a BoltzScreen: one run ConfigMap (the prepare and shard runs, the target), the CPU prepare Job,
the GPU shard Job (Indexed: index i is shard i), and the CPU rank Job with its own small ConfigMap (its shard count
is known only once prepare has read the library)."""

from __future__ import annotations

import math

from kubernetes import client

import boltz_contract as contract
from boltz_contract.screen import (
    LibraryFile,
    ScreenLigand,
    ScreenPrepareRun,
    ScreenRankRun,
    ScreenShardRun,
    placeholder_smiles,
)
from boltz_operator.api.prediction import BoltzPredictionSpec
from boltz_operator.api.screen import SCREEN_RESOURCE, BoltzScreenSpec
from boltz_operator.builders.campaign import SHARD_FAIL_INDEX_CODES
from boltz_operator.builders.common import (
    OwnerRef,
    WorkerPod,
    boltz_cache_env,
    cpu_pod,
    failure_policy,
    gpu_placement,
    run_mounts,
    run_volumes,
    worker_job,
)
from boltz_operator.builders.msa_store import MsaStorePlacement
from boltz_operator.builders.prediction import config_volume, msa_server_env
from boltz_operator.builders.prepare import ANNOTATION_MSA_KEY
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.config import OperatorConfig
from boltz_operator.render import DEFAULT_INPUTS_DIR, InputFileRef, predict_options

KIND = SCREEN_RESOURCE.kind
# Steps: the component labels, the worker commands and the run kinds (contract.screen) alike.
PREPARE, SHARDS, RANK = "screen-prepare", "screen-shard", "screen-rank"
_JOB_SUFFIX = {PREPARE: "screenprep", SHARDS: "screen", RANK: "rank"}  # within the 11 characters names leave
RUN_KEYS = {PREPARE: "prepare-run.json", SHARDS: "shard-run.json", RANK: "rank-run.json"}
TARGET_FILE = "target.yaml"
_TARGET_KEYS = {PREPARE: "prepare-target.yaml", SHARDS: "shard-target.yaml"}


def job_name(name: str, step: str) -> str:
    return f"{name}-{_JOB_SUFFIX[step]}"


def configmap_name(name: str, step: str = PREPARE) -> str:
    """The run ConfigMap (prepare and shards), or the rank step's own."""
    return f"{name}-rank-run" if step == RANK else f"{name}-screen-run"


def target_spec(spec: BoltzScreenSpec) -> BoltzPredictionSpec:
    """The target as a prediction with the screened ligand as a placeholder (and its affinity when asked): what
    prepare checks with boltz and what each shard input is made from."""
    target = spec.target.model_dump(by_alias=True, exclude_none=True, mode="json")
    fixed = [item["ligand"].get("smiles") for item in target["sequences"] if "ligand" in item]
    ligand = {"ligand": {"ids": [spec.ligand_chain], "smiles": placeholder_smiles(fixed)}}
    return BoltzPredictionSpec.model_validate(
        {
            **target,
            "sequences": [*target["sequences"], ligand],
            "modelCache": spec.model_cache,
            "options": spec.options.model_dump(by_alias=True, exclude_none=True, mode="json"),
            **({"affinity": {"binder": spec.ligand_chain}} if spec.affinity else {}),
            **(
                {"msaServer": spec.msa_server.model_dump(by_alias=True, exclude_none=True, mode="json")}
                if spec.msa_server
                else {}
            ),
        }
    )


def library_file_ref(spec: BoltzScreenSpec) -> InputFileRef | None:
    """The library file given as a ConfigMap key: projected into the inputs folder."""
    ref = spec.library.config_map_key_ref
    fmt = spec.library.file_format()
    if ref is None or fmt is None:
        return None
    return InputFileRef(
        source="configMap", path=f"{DEFAULT_INPUTS_DIR}/library.{fmt.value}", name=ref.name, key=ref.key
    )


def build_prepare_run(
    spec: BoltzScreenSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    request: contract.MsaRequest | None,
    store: MsaStorePlacement | None,
) -> ScreenPrepareRun:
    library = spec.library
    fmt = library.file_format()
    library_file = None
    if library.inline is None and fmt is not None:
        local = library_file_ref(spec)
        library_file = LibraryFile(
            format=fmt.value,
            path=local.path if local else None,
            s3_uri=library.s3.uri if library.s3 else None,
            endpoint_url=results.s3_endpoint if library.s3 else None,
            region=results.s3_region if library.s3 else None,
            id_column=library.id_column,
            smiles_column=library.smiles_column,
            id_property=library.id_property,
        )
    return ScreenPrepareRun(
        target_file=TARGET_FILE,
        ligand_chain=spec.ligand_chain,
        affinity=spec.affinity,
        options=predict_options(target_spec(spec)),
        downloads=[f.s3_download(results.s3_endpoint, results.s3_region) for f in files if f.source == "s3"],
        library_inline=[ScreenLigand(id=lig.id, smiles=lig.smiles, ccd=lig.ccd) for lig in library.inline]
        if library.inline is not None
        else None,
        library_file=library_file,
        ligands_per_shard=spec.ligands_per_shard,
        msa_request=request,
        msa_store=store.target if store and request else None,
        results=results.target,
    )


def build_shard_run(
    spec: BoltzScreenSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    msa_downloads: list[contract.S3Download],
) -> ScreenShardRun:
    """Every MSA is a file by then (given, or the store's): no MSA server on a GPU."""
    return ScreenShardRun(
        target_file=TARGET_FILE,
        ligand_chain=spec.ligand_chain,
        affinity=spec.affinity,
        options=predict_options(target_spec(spec)).model_copy(update={"use_msa_server": False}),
        downloads=[
            *(f.s3_download(results.s3_endpoint, results.s3_region) for f in files if f.source == "s3"),
            *msa_downloads,
        ],
        results=results.target,
    )


def build_configmap(
    ref: OwnerRef, prepare_doc: dict, shard_doc: dict, prepare_run: ScreenPrepareRun, shard_run: ScreenShardRun
) -> client.V1ConfigMap:
    import yaml

    return client.V1ConfigMap(
        metadata=ref.child_meta(configmap_name(ref.name), PREPARE),
        data={
            RUN_KEYS[PREPARE]: prepare_run.model_dump_json(indent=2),
            RUN_KEYS[SHARDS]: shard_run.model_dump_json(indent=2),
            _TARGET_KEYS[PREPARE]: yaml.safe_dump(prepare_doc, sort_keys=False),
            _TARGET_KEYS[SHARDS]: yaml.safe_dump(shard_doc, sort_keys=False),
        },
        immutable=True,
    )


def build_rank_configmap(ref: OwnerRef, spec: BoltzScreenSpec, shards: int, results: ResultsPlacement):
    run = ScreenRankRun(num_shards=shards, affinity=spec.affinity, top_k=spec.top_k, results=results.target)
    return client.V1ConfigMap(
        metadata=ref.child_meta(configmap_name(ref.name, RANK), RANK),
        data={RUN_KEYS[RANK]: run.model_dump_json(indent=2)},
        immutable=True,
    )


def min_successful_shards(spec: BoltzScreenSpec, shards: int) -> int:
    return max(1, math.ceil(spec.min_successful_shard_fraction * shards))


def _config(ref: OwnerRef, step: str, files: list[InputFileRef]) -> client.V1Volume:
    items = [(RUN_KEYS[step], contract.RUN_FILE)]
    if step in _TARGET_KEYS:
        items.append((_TARGET_KEYS[step], TARGET_FILE))
    return config_volume(configmap_name(ref.name, step), items, files)


def build_prepare_job(
    ref: OwnerRef,
    spec: BoltzScreenSpec,
    run: ScreenPrepareRun,
    files: list[InputFileRef],
    results: ResultsPlacement,
    store: MsaStorePlacement | None,
    cache_claim: str,
    config: OperatorConfig,
    fetch: bool,
) -> client.V1Job:
    """CPU only, as a prediction's prepare; it also reads the library and writes the shard slices (results store)."""
    fetching = store if run.msa_request else None
    pod = cpu_pod(
        config,
        spec.pod_metadata,
        command=["boltz-worker", PREPARE],
        env=[
            *boltz_cache_env(),
            *results.env,
            *(fetching.env if fetching else []),
            *msa_server_env(target_spec(spec)),
        ],  # fmt: skip
        mounts=run_mounts([*results.mounts, *(fetching.mounts(read_only=False) if fetching else [])]),
        volumes=run_volumes(
            _config(ref, PREPARE, files), cache_claim, [*results.volumes, *(fetching.volumes if fetching else [])]
        ),
    )
    key_uri = store.target.key_uri(run.msa_request.key) if store and run.msa_request else None
    return worker_job(
        ref,
        job_name(ref.name, PREPARE),
        PREPARE,
        pod,
        backoff_limit=spec.retries_per_shard,
        active_deadline_seconds=config.prepare_timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
        annotations={ANNOTATION_MSA_KEY: key_uri} if key_uri and fetch else None,
    )


def build_shard_job(
    ref: OwnerRef,
    spec: BoltzScreenSpec,
    shards: int,
    files: list[InputFileRef],
    results: ResultsPlacement,
    store: MsaStorePlacement | None,
    cache_claim: str,
    config: OperatorConfig,
) -> client.V1Job:
    """An Indexed Job of `shards` GPU pods (index i: shard i), each retried on its own; once more shards failed
    than minSuccessfulShardFraction allows, maxFailedIndexes stops the rest. Out of memory ends a shard only."""
    placement = gpu_placement(spec.resources, spec.tolerations, spec.queue_name, config)
    pod = WorkerPod.placed(
        placement,
        image=config.worker_image,
        command=["boltz-worker", SHARDS],
        env=[*boltz_cache_env(), *results.env, *(store.env if store else [])],
        mounts=run_mounts([*results.mounts, *(store.mounts(read_only=True) if store else [])]),
        volumes=run_volumes(
            _config(ref, SHARDS, files), cache_claim, [*results.volumes, *(store.volumes if store else [])]
        ),
        image_pull_policy=config.image_pull_policy,
        service_account=config.worker_service_account,
        pod_metadata=spec.pod_metadata,
        priority_class_name=spec.priority_class_name,
        runtime_class_name=config.runtime_class_name,
    )
    job = worker_job(
        ref,
        job_name(ref.name, SHARDS),
        SHARDS,
        pod,
        backoff_limit=None,
        active_deadline_seconds=spec.timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
        queue_name=placement.queue_name,
    )
    job.spec.completion_mode = "Indexed"
    job.spec.completions = shards
    job.spec.parallelism = min(spec.parallelism or shards, shards)
    job.spec.backoff_limit_per_index = spec.retries_per_shard
    job.spec.max_failed_indexes = shards - min_successful_shards(spec, shards)
    job.spec.pod_failure_policy = failure_policy(fail_index_codes=SHARD_FAIL_INDEX_CODES)
    return job


def build_rank_job(ref: OwnerRef, spec: BoltzScreenSpec, results: ResultsPlacement, config: OperatorConfig):
    """CPU only, no model cache: it merges the shard tables into one ranked table."""
    pod = cpu_pod(
        config,
        spec.pod_metadata,
        command=["boltz-worker", RANK],
        env=list(results.env),
        mounts=[
            client.V1VolumeMount(name="run-config", mount_path=contract.CONFIG_DIR, read_only=True),
            *results.mounts,
        ],
        volumes=[_config(ref, RANK, []), *results.volumes],
    )
    return worker_job(
        ref,
        job_name(ref.name, RANK),
        RANK,
        pod,
        backoff_limit=spec.retries_per_shard,
        active_deadline_seconds=config.prepare_timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
    )

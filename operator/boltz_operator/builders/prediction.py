"""The GPU children of a BoltzPrediction: the run ConfigMap (run.json + Boltz YAML) and the GPU Job, created once the
prepare Job (builders/prepare.py) succeeded. The MSAs the MSA server computed come from the MSA store: the GPU pod
never calls the server."""

from __future__ import annotations

import copy

import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import PREDICTION_RESOURCE
from boltz_operator.api.prediction import BoltzPredictionSpec
from boltz_operator.builders.common import (
    CONFIG_VOLUME,
    OwnerRef,
    WorkerPod,
    boltz_cache_env,
    gpu_placement,
    run_mounts,
    run_volumes,
    worker_job,
)
from boltz_operator.builders.msa_store import MsaStorePlacement
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.config import OperatorConfig
from boltz_operator.render import DEFAULT_DOWNLOADS_DIR, InputFileRef, predict_options

KIND = PREDICTION_RESOURCE.kind
COMPONENT = "predict"


def job_name(name: str) -> str:
    return f"{name}-predict"


def configmap_name(name: str) -> str:
    return f"{name}-predict-run"


def input_file_name(name: str) -> str:
    # Boltz names every output after the input file's stem: the record id is the prediction's name.
    return f"{name}.yaml"


def with_stored_msas(
    doc: dict, request: contract.MsaRequest | None, store: MsaStorePlacement | None
) -> tuple[dict, list[contract.S3Download]]:
    """`doc` (a rendered input) with the MSA store's files as the MSAs of the requested sequences (every item of a
    sequence gets its file), and the downloads that bring S3 files to the paths it names. Unchanged without a
    request. Raises ValueError when a requested sequence is not a protein of `doc` without an MSA."""
    if request is None:
        return doc, []
    if store is None:
        raise ValueError("an MSA request needs an MSA store")
    doc = copy.deepcopy(doc)
    needing = [
        item["protein"] for item in doc["sequences"] if "protein" in item and item["protein"].get("msa") in (None, "")
    ]
    downloads = []
    for index, (chain, sequence) in enumerate(zip(request.chains, request.sequences, strict=True)):
        items = [body for body in needing if body.get("sequence") == sequence]
        if not items:
            raise ValueError(f"chain {chain} of the MSA request is not a protein without an MSA in the input")
        path, download = store.file_path(request.key, index, DEFAULT_DOWNLOADS_DIR, chain)
        for body in items:  # items of one sequence are one entity to boltz: one MSA file for all
            body["msa"] = path
        if download is not None:
            downloads.append(download)
    return doc, downloads


def build_run(
    ref: OwnerRef,
    spec: BoltzPredictionSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    msa_downloads: list[contract.S3Download] = (),  # type: ignore[assignment]
) -> contract.PredictRun:
    """The GPU run: every MSA is a file by now (given, or prepared into the MSA store), so no MSA server."""
    return contract.PredictRun(
        record_id=ref.name,
        input_file=input_file_name(ref.name),
        options=predict_options(spec).model_copy(update={"use_msa_server": False}),
        downloads=[
            *(f.s3_download(results.s3_endpoint, results.s3_region) for f in files if f.source == "s3"),
            *msa_downloads,
        ],
        results=results.target,
        affinity_binder=spec.affinity.binder if spec.affinity else None,
    )


PREPARE_RUN_KEY = "prepare-run.json"  # the prepare Job's run.json, projected to RUN_FILE in its pod


def prepare_input_key(name: str) -> str:
    """The prepare Job's input YAML in the run ConfigMap (projected as input_file_name(name) in its pod)."""
    return f"prepare-{name}.yaml"


def build_configmap(
    ref: OwnerRef,
    boltz_input: dict,
    run: contract.PredictRun,
    prepare: tuple[dict, contract.PrepareRun] | None = None,
) -> client.V1ConfigMap:
    """The prediction's one run ConfigMap: the GPU run's run.json and input YAML, and (`prepare`) the prepare Job's
    input and run under their own keys. Everything in it is decided before prepare runs (the stored MSAs' paths
    follow from the store and the key), so it is created once, with the prepare Job. Owned by the prediction (not
    a Job) so it can be created first: a pod never waits on a missing volume and a restarted operator re-creates
    neither."""
    data = {
        contract.RUN_FILE: run.model_dump_json(indent=2, exclude_defaults=False),
        run.input_file: yaml.safe_dump(boltz_input, sort_keys=False),
    }
    if prepare is not None:
        prepare_doc, prepare_run = prepare
        data[PREPARE_RUN_KEY] = prepare_run.model_dump_json(indent=2, exclude_defaults=False)
        data[prepare_input_key(ref.name)] = yaml.safe_dump(prepare_doc, sort_keys=False)
    return client.V1ConfigMap(metadata=ref.child_meta(configmap_name(ref.name), COMPONENT), data=data, immutable=True)


def build_job(
    ref: OwnerRef,
    spec: BoltzPredictionSpec,
    run: contract.PredictRun,
    files: list[InputFileRef],
    results: ResultsPlacement,
    cache_claim: str,
    config: OperatorConfig,
    store: MsaStorePlacement | None = None,
) -> client.V1Job:
    """The GPU Job. `store`: the MSA store the run's prepared MSAs are read from (read-only), if any."""
    placement = gpu_placement(spec.resources, spec.resources.tolerations or [], spec.queue_name, config)
    store_env = store.env if store else []
    pod = WorkerPod.placed(
        placement,
        image=config.worker_image,
        command=["boltz-worker", "predict"],
        env=[*_env(results), *store_env],
        mounts=run_mounts([*results.mounts, *(store.mounts(read_only=True) if store else [])]),
        volumes=run_volumes(
            config_volume(
                configmap_name(ref.name),
                [(contract.RUN_FILE, contract.RUN_FILE), (run.input_file, run.input_file)],
                files,
            ),
            cache_claim,
            [*results.volumes, *(store.volumes if store else [])],
        ),
        image_pull_policy=config.image_pull_policy,
        service_account=config.worker_service_account,
        pod_metadata=spec.pod_metadata,
        priority_class_name=spec.priority_class_name,
        runtime_class_name=config.runtime_class_name,
    )
    return worker_job(
        ref,
        job_name(ref.name),
        COMPONENT,
        pod,
        backoff_limit=spec.retries,
        active_deadline_seconds=spec.timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
        queue_name=placement.queue_name,
    )


def _env(results: ResultsPlacement) -> list[client.V1EnvVar]:
    return [*boltz_cache_env(), *results.env]


def msa_server_env(spec: BoltzPredictionSpec) -> list[client.V1EnvVar]:
    """The MSA server's credentials, from the spec's Secret by reference (only the prepare pod calls the server)."""
    env: list[client.V1EnvVar] = []
    server = spec.msa_server
    if server and server.credentials_secret_ref:
        secret = server.credentials_secret_ref.name
        # boltz reads these itself; optional keys: a Secret holds either username/password or apiKey.
        for var, key in (
            ("BOLTZ_MSA_USERNAME", "username"),
            ("BOLTZ_MSA_PASSWORD", "password"),
            ("MSA_API_KEY_VALUE", "apiKey"),
        ):
            env.append(
                client.V1EnvVar(
                    name=var,
                    value_from=client.V1EnvVarSource(
                        secret_key_ref=client.V1SecretKeySelector(name=secret, key=key, optional=True)
                    ),
                )
            )
    return env


def config_volume(configmap: str, items: list[tuple[str, str]], files: list[InputFileRef]) -> client.V1Volume:
    """One projected volume at CONFIG_DIR: `items` ((key, path): a step's run.json and Boltz YAML) from the run
    ConfigMap `configmap`, and the user's ConfigMap/Secret keys (MSAs, templates) under inputs/, read in place, never
    copied."""
    sources = [
        client.V1VolumeProjection(
            config_map=client.V1ConfigMapProjection(
                name=configmap,
                items=[client.V1KeyToPath(key=key, path=path) for key, path in items],
            )
        )
    ]
    for f in files:
        if f.source == "s3":
            continue  # downloaded by the worker (run.downloads)
        item = [client.V1KeyToPath(key=f.key, path=f"inputs/{f.file_name}")]
        if f.source == "configMap":
            sources.append(client.V1VolumeProjection(config_map=client.V1ConfigMapProjection(name=f.name, items=item)))
        else:
            sources.append(client.V1VolumeProjection(secret=client.V1SecretProjection(name=f.name, items=item)))
    return client.V1Volume(name=CONFIG_VOLUME, projected=client.V1ProjectedVolumeSource(sources=sources))

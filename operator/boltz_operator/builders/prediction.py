"""The children of a BoltzPrediction: the run ConfigMap (run.json + Boltz YAML) and the GPU Job."""

from __future__ import annotations

import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import PREDICTION_RESOURCE
from boltz_operator.api.prediction import BoltzPredictionSpec
from boltz_operator.builders.common import (
    CONFIG_VOLUME,
    OwnerRef,
    WorkerPod,
    gpu_placement,
    run_mounts,
    run_volumes,
    worker_job,
)
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.config import OperatorConfig
from boltz_operator.render import InputFileRef, predict_options

KIND = PREDICTION_RESOURCE.kind
COMPONENT = "predict"


def job_name(name: str) -> str:
    return f"{name}-predict"


def configmap_name(name: str) -> str:
    return f"{name}-predict-run"


def input_file_name(name: str) -> str:
    # Boltz names every output after the input file's stem: the record id is the prediction's name.
    return f"{name}.yaml"


def build_run(
    ref: OwnerRef, spec: BoltzPredictionSpec, files: list[InputFileRef], results: ResultsPlacement
) -> contract.PredictRun:
    return contract.PredictRun(
        record_id=ref.name,
        input_file=input_file_name(ref.name),
        options=predict_options(spec),
        downloads=[f.s3_download(results.s3_endpoint, results.s3_region) for f in files if f.source == "s3"],
        results=results.target,
        affinity_binder=spec.affinity.binder if spec.affinity else None,
    )


def build_configmap(ref: OwnerRef, boltz_input: dict, run: contract.PredictRun) -> client.V1ConfigMap:
    """Owned by the prediction (not the Job) so it can be created first: a pod never waits on a missing volume
    and a restarted operator re-creates neither."""
    return client.V1ConfigMap(
        metadata=ref.child_meta(configmap_name(ref.name), COMPONENT),
        data={
            contract.RUN_FILE: run.model_dump_json(indent=2, exclude_defaults=False),
            run.input_file: yaml.safe_dump(boltz_input, sort_keys=False),
        },
        immutable=True,
    )


def build_job(
    ref: OwnerRef,
    spec: BoltzPredictionSpec,
    run: contract.PredictRun,
    files: list[InputFileRef],
    results: ResultsPlacement,
    cache_claim: str,
    config: OperatorConfig,
) -> client.V1Job:
    placement = gpu_placement(spec.resources, spec.resources.tolerations or [], spec.queue_name, config)
    pod = WorkerPod.placed(
        placement,
        image=config.worker_image,
        command=["boltz-worker", "predict"],
        env=_env(spec, results),
        mounts=run_mounts(results.mounts),
        volumes=run_volumes(_config_volume(ref, run, files), cache_claim, results.volumes),
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


def _env(spec: BoltzPredictionSpec, results: ResultsPlacement) -> list[client.V1EnvVar]:
    env = [
        client.V1EnvVar(name="BOLTZ_CACHE", value=contract.BOLTZ2_CACHE_DIR),
        client.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),  # weights come from the cache, never the network
        *results.env,
    ]
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


def _config_volume(ref: OwnerRef, run: contract.PredictRun, files: list[InputFileRef]) -> client.V1Volume:
    """One projected volume at CONFIG_DIR: run.json and the Boltz YAML from the run ConfigMap, and the user's
    ConfigMap/Secret keys (MSAs, templates) under inputs/, read in place, never copied."""
    sources = [
        client.V1VolumeProjection(
            config_map=client.V1ConfigMapProjection(
                name=configmap_name(ref.name),
                items=[
                    client.V1KeyToPath(key=contract.RUN_FILE, path=contract.RUN_FILE),
                    client.V1KeyToPath(key=run.input_file, path=run.input_file),
                ],
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

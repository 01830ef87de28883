"""The children of a BoltzModelCache: the PVC (unless adopted), the populate run ConfigMap and Job.

The populate Job is named after the spec's generation: re-applying the same spec creates nothing, a changed
source runs a new Job, which skips every file already present and verified.
"""

from __future__ import annotations

from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import MODEL_CACHE_RESOURCE
from boltz_operator.api.modelcache import BoltzModelCacheSpec
from boltz_operator.builders.common import (
    CONFIG_VOLUME,
    MODELS_VOLUME,
    OwnerRef,
    WorkerPod,
    s3_credentials_env,
    worker_job,
)
from boltz_operator.builders.results import split_s3_uri
from boltz_operator.config import OperatorConfig

KIND = MODEL_CACHE_RESOURCE.kind
COMPONENT = "populate"
HF_TOKEN_ENV = "HF_TOKEN"


def claim_name(name: str, spec: BoltzModelCacheSpec) -> str:
    return spec.storage.existing_claim or f"{name}-models"


def job_name(ref: OwnerRef) -> str:
    return f"{ref.name}-populate-{ref.generation}"


def build_pvc(ref: OwnerRef, spec: BoltzModelCacheSpec) -> client.V1PersistentVolumeClaim:
    storage = spec.storage
    return client.V1PersistentVolumeClaim(
        # Owned (and so deleted with the cache) only when asked: by default the weights outlive the resource.
        metadata=ref.child_meta(claim_name(ref.name, spec), "models", owned=not spec.retain_volume_on_delete),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=[mode.value for mode in storage.access_modes],
            storage_class_name=storage.storage_class_name,
            resources=client.V1VolumeResourceRequirements(requests={"storage": storage.size}),
        ),
    )


def build_run(spec: BoltzModelCacheSpec) -> contract.PopulateRun:
    source = spec.source
    if source.hugging_face is not None:
        populate_source = contract.PopulateSource(
            huggingface=contract.HuggingFaceSource(
                endpoint=source.hugging_face.endpoint.rstrip("/"),
                token_env=HF_TOKEN_ENV if source.hugging_face.token_secret_ref else None,
            )
        )
    elif source.s3 is not None:
        bucket, prefix = split_s3_uri(source.s3.uri)
        populate_source = contract.PopulateSource(
            s3=contract.S3Source(bucket=bucket, prefix=prefix, endpoint_url=source.s3.endpoint, region=source.s3.region)
        )
    else:
        populate_source = contract.PopulateSource(preloaded=True)
    return contract.PopulateRun(bundles=[b.value for b in spec.bundles], source=populate_source)


def configmap_name(ref: OwnerRef) -> str:
    return f"{job_name(ref)}-run"


def build_configmap(ref: OwnerRef, run: contract.PopulateRun) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=ref.child_meta(configmap_name(ref), COMPONENT),
        data={contract.RUN_FILE: run.model_dump_json(indent=2)},
        immutable=True,
    )


def build_job(ref: OwnerRef, spec: BoltzModelCacheSpec, config: OperatorConfig) -> client.V1Job:
    populate = spec.populate_job
    pod = WorkerPod(
        image=config.worker_image,
        image_pull_policy=config.image_pull_policy,
        pod_metadata=populate.pod_metadata,
        command=["boltz-worker", "populate"],
        env=_source_env(spec),
        resources={
            "cpu": populate.resources.cpu or config.populate_cpu,
            "memory": populate.resources.memory or config.populate_memory,
        },
        mounts=[
            client.V1VolumeMount(name=CONFIG_VOLUME, mount_path=contract.CONFIG_DIR, read_only=True),
            client.V1VolumeMount(name=MODELS_VOLUME, mount_path=contract.MODELS_DIR),  # the cache's one writer
        ],
        volumes=[
            client.V1Volume(name=CONFIG_VOLUME, config_map=client.V1ConfigMapVolumeSource(name=configmap_name(ref))),
            client.V1Volume(
                name=MODELS_VOLUME,
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                    claim_name=claim_name(ref.name, spec)
                ),
            ),
        ],
        service_account=config.worker_service_account,
        node_selector=populate.node_selector,
        tolerations=[
            client.V1Toleration(**t.model_dump(mode="json", exclude_none=True)) for t in populate.tolerations or []
        ],
    )
    return worker_job(
        ref,
        job_name(ref),
        COMPONENT,
        pod,
        backoff_limit=populate.backoff_limit,
        active_deadline_seconds=populate.active_deadline_seconds,
        ttl_seconds=config.job_ttl_seconds,
    )


def _source_env(spec: BoltzModelCacheSpec) -> list[client.V1EnvVar]:
    source = spec.source
    if source.hugging_face is not None and source.hugging_face.token_secret_ref is not None:
        ref = source.hugging_face.token_secret_ref
        return [
            client.V1EnvVar(
                name=HF_TOKEN_ENV,
                value_from=client.V1EnvVarSource(secret_key_ref=client.V1SecretKeySelector(name=ref.name, key=ref.key)),
            )
        ]
    if source.s3 is not None and source.s3.credentials_secret_ref is not None:
        return s3_credentials_env(source.s3.credentials_secret_ref.name)
    return []

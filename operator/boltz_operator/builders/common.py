"""Pieces every worker Job shares: labels, ownership, the restricted security context, scratch volumes,
the failure policy that reads the worker's exit codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client

import boltz_contract as contract
from boltz_operator.api import API_VERSION
from boltz_operator.api.common import Toleration
from boltz_operator.config import OperatorConfig

MANAGED_BY = "boltz-operator"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_OWNER_KIND = "boltz-operator.io/owner-kind"
LABEL_OWNER_NAME = "boltz-operator.io/owner-name"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WORKER_CONTAINER = "worker"
WORKER_UID = 1000

# The worker's writable places: the root filesystem is read-only.
WORK_VOLUME = "work"
TMP_VOLUME = "tmp"
CONFIG_VOLUME = "run-config"
MODELS_VOLUME = "models"


@dataclass(frozen=True)
class OwnerRef:
    """The resource whose children a builder makes: every child carries its labels and, mostly, its owner reference
    (garbage collection deletes the children with it)."""

    kind: str  # BoltzPrediction, BoltzGenCampaign, BoltzModelCache (the api's resource descriptors name them)
    namespace: str
    name: str
    uid: str
    generation: int = 1

    @classmethod
    def of(cls, kind: str, meta: Mapping) -> OwnerRef:
        """From an object's metadata (a camelCase dict, as the watch delivers it)."""
        return cls(kind, meta["namespace"], meta["name"], meta["uid"], meta.get("generation", 1))

    def labels(self, component: str) -> dict[str, str]:
        """Labels on every child: the operator finds children by owner kind and name (names fit label values:
        the CRDs cap resource names at 52 characters)."""
        return {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_NAME: "boltz",
            LABEL_COMPONENT: component,
            LABEL_OWNER_KIND: self.kind,
            LABEL_OWNER_NAME: self.name,
        }

    def owner_reference(self) -> client.V1OwnerReference:
        return client.V1OwnerReference(
            api_version=API_VERSION,
            kind=self.kind,
            name=self.name,
            uid=self.uid,
            controller=True,
            block_owner_deletion=True,
        )

    def child_meta(
        self, name: str, component: str, owned: bool = True, labels: dict[str, str] | None = None
    ) -> client.V1ObjectMeta:
        """A child's metadata: its name, this namespace, labels(component) (or `labels`), owned unless not."""
        return client.V1ObjectMeta(
            name=name,
            namespace=self.namespace,
            labels=labels or self.labels(component),
            owner_references=[self.owner_reference()] if owned else None,
        )


def pod_security_context() -> client.V1PodSecurityContext:
    # Restricted Pod Security Standard: non-root, RuntimeDefault seccomp; fsGroup makes volumes writable.
    return client.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=WORKER_UID,
        run_as_group=WORKER_UID,
        fs_group=WORKER_UID,
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> client.V1SecurityContext:
    return client.V1SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=client.V1Capabilities(drop=["ALL"]),
    )


def run_mounts(extra: list[client.V1VolumeMount]) -> list[client.V1VolumeMount]:
    """A run's inputs: its config (run.json and input files) and the model cache, both read-only; plus `extra`."""
    return [
        client.V1VolumeMount(name=CONFIG_VOLUME, mount_path=contract.CONFIG_DIR, read_only=True),
        client.V1VolumeMount(name=MODELS_VOLUME, mount_path=contract.MODELS_DIR, read_only=True),
        *extra,
    ]


def run_volumes(config: client.V1Volume, cache_claim: str, extra: list[client.V1Volume]) -> list[client.V1Volume]:
    """The volumes behind run_mounts: the config volume (named CONFIG_VOLUME), the cache PVC read-only, `extra`."""
    models = client.V1Volume(
        name=MODELS_VOLUME,
        persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name=cache_claim, read_only=True),
    )
    return [config, models, *extra]


def scratch_volumes() -> list[client.V1Volume]:
    return [
        client.V1Volume(name=WORK_VOLUME, empty_dir=client.V1EmptyDirVolumeSource()),
        client.V1Volume(name=TMP_VOLUME, empty_dir=client.V1EmptyDirVolumeSource()),
    ]


def scratch_mounts() -> list[client.V1VolumeMount]:
    return [
        client.V1VolumeMount(name=WORK_VOLUME, mount_path=contract.WORK_DIR),
        client.V1VolumeMount(name=TMP_VOLUME, mount_path="/tmp"),
    ]


def scratch_env() -> list[client.V1EnvVar]:
    """HOME and every library cache point into the work emptyDir, never the image or the model cache."""
    work = contract.WORK_DIR
    return [
        client.V1EnvVar(name="HOME", value=f"{work}/home"),
        client.V1EnvVar(name="XDG_CACHE_HOME", value=f"{work}/cache"),
        client.V1EnvVar(name="TRITON_CACHE_DIR", value=f"{work}/cache/triton"),
        client.V1EnvVar(name="NUMBA_CACHE_DIR", value=f"{work}/cache/numba"),
        client.V1EnvVar(name="CUEQ_CACHE_DIR", value=f"{work}/cache/cuequivariance"),
        client.V1EnvVar(name="MPLCONFIGDIR", value=f"{work}/cache/matplotlib"),
        client.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
    ]


OOM_KILLED_EXIT_CODE = 137  # 128 + SIGKILL: what a container killed by its memory limit exits with


def s3_credentials_env(secret_name: str | None) -> list[client.V1EnvVar]:
    """AWS credentials from a Secret (keys AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), by reference only."""
    if not secret_name:
        return []
    return [
        client.V1EnvVar(
            name=key,
            value_from=client.V1EnvVarSource(secret_key_ref=client.V1SecretKeySelector(name=secret_name, key=key)),
        )
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ]


def failure_policy(fail_index_codes: frozenset[int] = frozenset()) -> client.V1PodFailurePolicy:
    """Never count a disruption (preemption, eviction, drain); fail at once on errors a retry cannot fix: the
    worker's permanent exit codes and a container killed by its memory limit (exit 137, the kernel's SIGKILL; the
    same input runs out of the same memory again). The disruption rule comes first (the first matching rule wins):
    a preempted pod killed with SIGKILL also exits 137.
    fail_index_codes (Indexed Jobs with backoffLimitPerIndex): of those, fail only the pod's index, not the Job."""
    fail_fast = {int(code) for code in contract.FAIL_FAST_EXIT_CODES} | {OOM_KILLED_EXIT_CODE}
    rules = [
        client.V1PodFailurePolicyRule(
            action=action,
            on_exit_codes=client.V1PodFailurePolicyOnExitCodesRequirement(
                container_name=WORKER_CONTAINER, operator="In", values=sorted(codes)
            ),
        )
        for action, codes in (("FailJob", fail_fast - fail_index_codes), ("FailIndex", fail_fast & fail_index_codes))
        if codes
    ]
    return client.V1PodFailurePolicy(
        rules=[
            client.V1PodFailurePolicyRule(
                action="Ignore",
                on_pod_conditions=[
                    client.V1PodFailurePolicyOnPodConditionsPattern(type="DisruptionTarget", status="True")
                ],
            ),
            *rules,
        ]
    )


@dataclass(frozen=True)
class GpuPlacement:
    """What a GPU pod asks for and where it may run: the resource's own settings over the operator's defaults."""

    resources: dict[str, str]
    node_selector: dict[str, str]
    tolerations: list[client.V1Toleration]
    queue_name: str | None  # Kueue's LocalQueue, when there is one


def gpu_placement(
    resources, tolerations: list[Toleration], queue_name: str | None, config: OperatorConfig
) -> GpuPlacement:
    """`resources` is an api ComputeResources with gpus and node_selector (a prediction's or a campaign's)."""
    gpus = resources.gpus if resources.gpus is not None else config.default_gpus
    return GpuPlacement(
        resources={
            "cpu": resources.cpu or config.default_cpu,
            "memory": resources.memory or config.default_memory,
            config.gpu_resource_name: str(gpus),
        },
        node_selector={**config.node_selector, **(resources.node_selector or {})},
        tolerations=[
            client.V1Toleration(**t.model_dump(mode="json", exclude_none=True))
            for t in [*config.gpu_tolerations, *tolerations]
        ],
        queue_name=queue_name or config.default_queue_name,
    )


@dataclass(frozen=True)
class WorkerPod:
    """What differs between the operator's worker pods; worker_job adds the rest (security, scratch, token, the
    termination message). `resources` are requests and limits alike; `pod_metadata` is the user's (api PodMetadata)."""

    image: str
    command: list[str]
    env: list[client.V1EnvVar]
    resources: dict[str, str]
    mounts: list[client.V1VolumeMount]
    volumes: list[client.V1Volume]
    image_pull_policy: str
    service_account: str | None
    pod_metadata: Any = None
    node_selector: dict[str, str] | None = None
    tolerations: list[client.V1Toleration] | None = None
    priority_class_name: str | None = None
    runtime_class_name: str | None = None

    @classmethod
    def placed(cls, placement: GpuPlacement, **fields) -> WorkerPod:
        """A pod where a GpuPlacement says (its resources, node selector, tolerations)."""
        return cls(
            resources=placement.resources,
            node_selector=placement.node_selector,
            tolerations=placement.tolerations,
            **fields,
        )


def boltz_cache_env() -> list[client.V1EnvVar]:
    """Where boltz finds its weights and molecules (the cache mounted at contract.BOLTZ2_CACHE_DIR), and never the
    network for them."""
    return [
        client.V1EnvVar(name="BOLTZ_CACHE", value=contract.BOLTZ2_CACHE_DIR),
        client.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),
    ]


def cpu_pod(
    config: OperatorConfig,
    pod_metadata: Any,
    *,
    command: list[str],
    env: list[client.V1EnvVar],
    mounts: list[client.V1VolumeMount],
    volumes: list[client.V1Volume],
) -> WorkerPod:
    """A worker pod of a CPU step (a prediction's or a screen's prepare, a screen's rank) in the worker image: the
    chart's prepare.* resources, node selector and tolerations; no GPU and no GPU runtime class."""
    return WorkerPod(
        image=config.worker_image,
        command=command,
        env=env,
        resources={"cpu": config.prepare_cpu, "memory": config.prepare_memory},
        mounts=mounts,
        volumes=volumes,
        image_pull_policy=config.image_pull_policy,
        service_account=config.worker_service_account,
        pod_metadata=pod_metadata,
        node_selector=config.prepare_node_selector,
        tolerations=[
            client.V1Toleration(**t.model_dump(mode="json", exclude_none=True)) for t in config.prepare_tolerations
        ],
        runtime_class_name=None,
    )


def worker_job(
    owner: OwnerRef,
    name: str,
    component: str,
    pod: WorkerPod,
    *,
    backoff_limit: int | None,
    active_deadline_seconds: int | None,
    ttl_seconds: int,
    queue_name: str | None = None,
    annotations: dict[str, str] | None = None,
) -> client.V1Job:
    """The Job every worker runs in: restricted pod, no token, scratch dirs, the worker's termination message,
    and the failure policy that reads its exit code. Labelled and owned by `owner` (plus Kueue's queue label on the
    Job when `queue_name`); `annotations` go on the Job (what the operator's indices read back)."""
    container = client.V1Container(
        name=WORKER_CONTAINER,
        image=pod.image,
        image_pull_policy=pod.image_pull_policy,
        command=pod.command,
        env=[*scratch_env(), *pod.env],
        resources=client.V1ResourceRequirements(requests=pod.resources, limits=pod.resources),
        security_context=container_security_context(),
        volume_mounts=[*pod.mounts, *scratch_mounts()],
        termination_message_path=contract.TERMINATION_LOG,
        # A worker that dies before writing its summary still leaves the end of its log for the operator.
        termination_message_policy="FallbackToLogsOnError",
    )
    spec = client.V1PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        service_account_name=pod.service_account,
        security_context=pod_security_context(),
        containers=[container],
        volumes=[*pod.volumes, *scratch_volumes()],
        node_selector=pod.node_selector or None,
        tolerations=pod.tolerations or None,
        priority_class_name=pod.priority_class_name,
        runtime_class_name=pod.runtime_class_name,
    )
    labels = owner.labels(component)
    pod_labels = {**(pod.pod_metadata.labels if pod.pod_metadata else {}), **labels}
    pod_annotations = dict(pod.pod_metadata.annotations) if pod.pod_metadata else None
    job_labels = {**labels, KUEUE_QUEUE_LABEL: queue_name} if queue_name else None
    metadata = owner.child_meta(name, component, labels=job_labels)
    metadata.annotations = annotations or None
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=metadata,
        spec=client.V1JobSpec(
            backoff_limit=backoff_limit,
            active_deadline_seconds=active_deadline_seconds,
            ttl_seconds_after_finished=ttl_seconds,
            pod_failure_policy=failure_policy(),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=pod_labels, annotations=pod_annotations or None), spec=spec
            ),
        ),
    )

"""BoltzModelCache: a PVC holding the model weights, filled once by a populate Job, mounted read-only by runs."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import Field

from .common import (
    AGE_COLUMN,
    API_VERSION,
    CelRule,
    ComputeResources,
    Condition,
    ConfigKey,
    KindStatus,
    KubeModel,
    NodeSelector,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    Quantity,
    ResourceKind,
    S3Location,
    StatusModel,
    Toleration,
    Url,
    conditions_field,
)


class AccessMode(str, Enum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_WRITE_MANY = "ReadWriteMany"
    READ_ONLY_MANY = "ReadOnlyMany"
    READ_WRITE_ONCE_POD = "ReadWriteOncePod"


class Bundle(str, Enum):
    """A model bundle: a fixed set of files the populate Job fetches into <bundle>/ on the volume."""

    BOLTZ2 = "boltz2"  # BoltzPrediction
    BOLTZGEN = "boltzgen"  # BoltzGenCampaign


class StorageSpec(KubeModel):
    """The volume that holds the weights: a PVC the operator creates, or an existing one it adopts."""

    cel_rules = (
        CelRule(
            rule="!(has(self.existingClaim) && has(self.storageClassName))",
            message="storageClassName applies only to a PVC the operator creates; omit it with existingClaim",
        ),
    )

    existing_claim: ObjectName | None = Field(
        default=None,
        description=(
            "Adopt this existing PVC instead of creating one (size, accessModes and storageClassName are then "
            "ignored). With source.preloaded it is only verified, never written."
        ),
    )
    storage_class_name: str | None = Field(
        default=None,
        max_length=253,
        description="StorageClass of the PVC the operator creates; the cluster default if omitted.",
    )
    size: Quantity = Field(default="20Gi", description="Requested size of the PVC the operator creates.")
    access_modes: list[AccessMode] = Field(
        default=[AccessMode.READ_WRITE_MANY],
        min_length=1,
        max_length=4,
        description=(
            "Access modes of the PVC the operator creates. Every prediction mounts the cache read-only, on any "
            "node: in a multi-node cluster that needs ReadWriteMany (the default) or ReadOnlyMany-capable "
            "storage. ReadWriteOnce works only when all GPU pods land on one node."
        ),
    )


class TokenSecretRef(KubeModel):
    """A key of a Secret in the same namespace holding a token."""

    name: ObjectName = Field(description="Name of the Secret, in the same namespace.")
    key: ConfigKey = Field(default="token", description="Key within the Secret holding the token.")


class HuggingFaceSource(KubeModel):
    """Download the weights from Hugging Face or a mirror serving the same paths."""

    endpoint: Url = Field(
        default="https://huggingface.co",
        description=(
            "Base URL of Hugging Face or a mirror serving /<repo>/resolve/<revision>/<file> (and, for the "
            "boltzgen bundle's mols.zip, the dataset path /datasets/<repo>/resolve/<revision>/<file>)."
        ),
    )
    token_secret_ref: TokenSecretRef | None = Field(
        default=None, description="Secret key holding an access token, for mirrors or gated repositories."
    )


class PreloadedSource(KubeModel):
    """The volume already holds the weights in the cache layout (e.g. restored by an admin): only verify them."""


class ModelSource(KubeModel):
    """Where the populate Job gets the weights. Exactly one of huggingFace, s3, preloaded."""

    one_of = ("hugging_face", "s3", "preloaded")

    hugging_face: HuggingFaceSource | None = Field(
        default=None, description="Download from Hugging Face (default URLs) or a mirror of it."
    )
    s3: S3Location | None = Field(
        default=None,
        description=(
            "Copy from an S3 prefix laid out like the cache (<prefix>/boltz2/boltz2_conf.ckpt, "
            "<prefix>/boltzgen/mols.zip, ...): for air-gapped clusters."
        ),
    )
    preloaded: PreloadedSource | None = Field(
        default=None, description="Set to {} when the volume is already filled: the Job only verifies the files."
    )


class PopulateJobSpec(KubeModel):
    """Settings of the Job that fills the cache."""

    resources: ComputeResources = Field(
        default=ComputeResources(), description="CPU and memory of the populate container."
    )
    node_selector: NodeSelector | None = Field(default=None, description="Node labels the populate pod must match.")
    tolerations: list[Toleration] | None = Field(
        default=None, max_length=32, description="Tolerations of the populate pod."
    )
    pod_metadata: PodMetadata | None = Field(default=None, description="Extra labels and annotations for the pod.")
    active_deadline_seconds: int = Field(
        default=7200, ge=60, description="Time limit of the populate Job, in seconds, across all retries."
    )
    backoff_limit: int = Field(
        default=3, ge=0, le=20, description="Retries of the populate pod before the cache is Failed."
    )


class BoltzModelCacheSpec(KubeModel):
    """Desired state of a BoltzModelCache."""

    storage: StorageSpec = Field(default=StorageSpec(), description="The volume holding the weights.")
    source: ModelSource = Field(description="Where the weights come from. Exactly one of huggingFace, s3, preloaded.")
    bundles: list[Bundle] = Field(
        default=[Bundle.BOLTZ2],
        min_length=1,
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description=(
            "Model bundles to fetch, each into its own directory on the volume. boltz2 (for BoltzPrediction): "
            "boltz2_conf.ckpt and boltz2_aff.ckpt plus the CCD molecules mols.tar, extracted to mols/, from the "
            "Hugging Face model repo boltz-community/boltz-2. boltzgen (for BoltzGenCampaign): the five "
            "checkpoints boltzgen1_diverse.ckpt, boltzgen1_adherence.ckpt, boltzgen1_ifold.ckpt, "
            "boltz2_conf_final.ckpt and boltz2_aff.ckpt from the model repo boltzgen/boltzgen-1, and mols.zip "
            "(read as it is, not extracted) from the dataset repo boltzgen/inference-data. Each bundle is several "
            "GB: size the volume for all the bundles listed. An s3 source holds them as <prefix>/<bundle>/<file>."
        ),
    )
    retain_volume_on_delete: bool = Field(
        default=True,
        description=(
            "Keep the PVC (and the downloaded weights) when this BoltzModelCache is deleted. "
            "Set false to delete the PVC with it. An adopted existingClaim is never deleted."
        ),
    )
    populate_job: PopulateJobSpec = Field(
        default=PopulateJobSpec(), description="Settings of the Job that fills the cache."
    )


class ModelCachePhase(str, Enum):
    """Pending, Populating, Ready or Failed."""

    PENDING = "Pending"
    POPULATING = "Populating"
    READY = "Ready"
    FAILED = "Failed"


class ModelCacheConditionType(str, Enum):
    READY = "Ready"  # the weights are on the volume and verified
    POPULATE_JOB_CREATED = "PopulateJobCreated"
    FAILED = "Failed"


class CachedFile(StatusModel):
    """A file on the cache volume, as the populate Job verified it."""

    path: str = Field(description="Path relative to the volume root (e.g. boltz2/boltz2_conf.ckpt).")
    bytes: int = Field(ge=0, description="Size in bytes.")
    sha256: str | None = Field(default=None, description="SHA-256 of the content, hex.")


class BoltzModelCacheStatus(KindStatus[ModelCachePhase]):
    """Observed state of a BoltzModelCache, written by the operator."""

    conditions: list[Condition] = conditions_field("Conditions: Ready, PopulateJobCreated, Failed.")
    claim_name: str | None = Field(default=None, description="Name of the PVC holding the weights.")
    files: list[CachedFile] = Field(default=[], description="Files on the volume and their checksums.")
    total_bytes: int | None = Field(default=None, ge=0, description="Total size of the files, in bytes.")
    populate_duration_seconds: float | None = Field(default=None, description="How long the populate Job took.")
    populated_time: datetime | None = Field(default=None, description="When the cache last became Ready.")
    # Worded apart from the run kinds' message since the first CRD: overridden so the CRD stays as it is.
    message: str | None = Field(default=None, description="Human-readable summary of the current state.")


class BoltzModelCache(StatusModel):
    """A whole BoltzModelCache object: `BoltzModelCache.model_validate(body)` on a kopf body or API dict."""

    api_version: Literal["boltz-operator.io/v1alpha1"] = API_VERSION
    kind: Literal["BoltzModelCache"] = "BoltzModelCache"
    metadata: dict[str, Any] = {}
    spec: BoltzModelCacheSpec
    status: BoltzModelCacheStatus = BoltzModelCacheStatus()


MODEL_CACHE_RESOURCE = ResourceKind(
    kind="BoltzModelCache",
    plural="boltzmodelcaches",
    singular="boltzmodelcache",
    short_names=("bmc",),
    spec_model=BoltzModelCacheSpec,
    status_model=BoltzModelCacheStatus,
    description=(
        "BoltzModelCache is a volume of Boltz model weights, filled once by a populate Job and then mounted "
        "read-only by every BoltzPrediction that names it."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Pending, Populating, Ready or Failed."),
        PrinterColumn("Size", ".spec.storage.size", "string", "Requested volume size."),
        PrinterColumn("Bytes", ".status.totalBytes", "integer", "Bytes of verified files on the volume."),
        AGE_COLUMN,
    ),
)

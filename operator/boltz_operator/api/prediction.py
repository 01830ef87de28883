"""BoltzPrediction: one Boltz-2 input (sequences, constraints, templates, affinity: api/boltz_input.py) prepared on
CPU, then run as one GPU Job."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import Field

from .boltz_input import (
    MAX_CONSTRAINTS,
    MAX_SEQUENCES,
    MAX_TEMPLATES,
    Constraint,
    MsaServer,
    SequenceEntry,
    Template,
)
from .common import (
    AGE_COLUMN,
    API_VERSION,
    CelRule,
    ChainId,
    ComputeResources,
    Condition,
    KindStatus,
    KubeModel,
    NodeSelector,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    ResourceKind,
    ResultsStore,
    StatusModel,
    Toleration,
    cel_ids,
    cel_validations,
    conditions_field,
    immutable_rule,
)
from .notify import NotificationRecord, Notify, notifications_field, notify_field

# ---------------------------------------------------------------------------------------------- run settings


class Affinity(KubeModel):
    """Predict binding affinity of one ligand to the rest of the complex."""

    binder: ChainId = Field(description="Id of the ligand (one with a single id) whose affinity to predict.")


class AffinityOptions(KubeModel):
    """Sampling of the affinity module."""

    sampling_steps: int = Field(default=200, ge=1, le=1000, description="Sampling steps for affinity prediction.")
    diffusion_samples: int = Field(default=5, ge=1, le=100, description="Diffusion samples for affinity prediction.")
    mw_correction: bool = Field(
        default=False, description="Apply the molecular-weight correction to the affinity value."
    )


class OutputFormat(str, Enum):
    MMCIF = "mmcif"
    PDB = "pdb"


class PredictionOptions(KubeModel):
    """`boltz predict` settings."""

    diffusion_samples: int = Field(default=1, ge=1, le=100, description="Structures to sample.")
    recycling_steps: int = Field(default=3, ge=0, le=50, description="Recycling steps.")
    sampling_steps: int = Field(default=200, ge=1, le=1000, description="Diffusion sampling steps.")
    step_scale: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="Diffusion step scale (temperature); lower gives more diverse samples. "
        "Boltz's default (1.5) if omitted.",
    )
    max_parallel_samples: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Samples computed at once (lower to save GPU memory). Boltz's default if omitted.",
    )
    use_potentials: bool = Field(default=False, description="Apply inference-time potentials for more physical poses.")
    seed: int | None = Field(default=None, ge=0, description="Random seed, for reproducible runs.")
    output_format: OutputFormat = Field(default=OutputFormat.MMCIF, description="Structure file format: mmcif or pdb.")
    affinity: AffinityOptions = Field(default=AffinityOptions(), description="Sampling of the affinity module.")
    max_msa_seqs: int | None = Field(
        default=None, ge=1, description="Most MSA sequences to use. Boltz's default (8192) if omitted."
    )
    subsample_msa: bool = Field(default=False, description="Subsample the MSA.")
    num_subsampled_msa: int | None = Field(
        default=None, ge=1, description="MSA sequences to keep when subsampling. Boltz's default (1024) if omitted."
    )
    use_kernels: bool = Field(
        default=True, description="Use the cuEquivariance GPU kernels; set false for GPUs or images without them."
    )


class PredictionResources(ComputeResources):
    """What the prediction pod asks for and where it may run."""

    gpus: int | None = Field(
        default=None, ge=1, le=8, description="GPUs for the pod; the operator's default (usually 1) if omitted."
    )
    node_selector: NodeSelector | None = Field(
        default=None, description="Node labels the pod must match (e.g. a GPU type)."
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Tolerations of the pod.")


# ---------------------------------------------------------------------------------------------- spec

# The fields that define the run: changing them would make status.results describe a different input.
IMMUTABLE_FIELDS = (
    "modelCache",
    "sequences",
    "constraints",
    "templates",
    "affinity",
    "options",
    "msaServer",
    "results",
)
IMMUTABLE_NOTE = " Immutable after creation."


def _cel_constraint_chains(c: str) -> str:
    """CEL: every chain id a constraints[] item refers to."""
    return (
        f"(has({c}.bond) ? [{c}.bond.atom1.chain, {c}.bond.atom2.chain] : "
        f"has({c}.contact) ? [{c}.contact.token1.chain, {c}.contact.token2.chain] : "
        f"has({c}.pocket) ? [{c}.pocket.binder] + {c}.pocket.contacts.map(t, t.chain) : [])"
    )


IDS_UNIQUE = CelRule(
    rule=f"self.all(a, {cel_ids('a')}.all(id, self.exists_one(b, id in {cel_ids('b')})))",
    message="chain ids must be unique across all sequences",
)
SPEC_RULES = (
    CelRule(
        rule="!has(self.affinity) || self.sequences.exists(s, has(s.ligand) && self.affinity.binder in s.ligand.ids)",
        message="affinity.binder must be the id of a ligand in sequences",
        field_path=".affinity.binder",
    ),
    CelRule(
        rule="!has(self.affinity) || !self.sequences.exists(s, has(s.ligand) && self.affinity.binder in s.ligand.ids "
        "&& size(s.ligand.ids) > 1)",
        message="affinity.binder names a ligand with several ids (copies); Boltz predicts affinity only for a "
        "single-copy ligand",
        field_path=".affinity.binder",
    ),
    CelRule(
        rule=f"!has(self.constraints) || self.constraints.all(c, {_cel_constraint_chains('c')}"
        f".all(ch, self.sequences.exists(s, ch in {cel_ids('s')})))",
        message="constraints refer to a chain id that no sequences[] item defines",
        field_path=".constraints",
    ),
    CelRule(
        rule="!has(self.templates) || self.templates.all(t, !has(t.chainIds) || t.chainIds.all(ch, "
        "self.sequences.exists(s, has(s.protein) && ch in s.protein.ids)))",
        message="templates[].chainIds must be ids of protein chains",
        field_path=".templates",
    ),
) + tuple(immutable_rule(alias, "BoltzPrediction") for alias in IMMUTABLE_FIELDS)


class BoltzPredictionSpec(KubeModel):
    """Desired state of a BoltzPrediction. The fields that define the run (modelCache, sequences, constraints,
    templates, affinity, options, msaServer, results) are immutable after creation: create a new
    BoltzPrediction to re-run. Scheduling fields (resources, podMetadata, timeoutSeconds, retries, queueName,
    priorityClassName) may change; they apply to Jobs created afterwards."""

    cel_rules = SPEC_RULES

    model_cache: ObjectName = Field(
        default="default",
        description="Name of the BoltzModelCache (same namespace) whose weights to use. "
        "The run waits until it is Ready." + IMMUTABLE_NOTE,
    )
    sequences: list[SequenceEntry] = Field(
        min_length=1,
        max_length=MAX_SEQUENCES,
        json_schema_extra=cel_validations(IDS_UNIQUE),
        description="The chains and molecules of the complex, one entry per entity." + IMMUTABLE_NOTE,
    )
    constraints: list[Constraint] | None = Field(
        default=None, max_length=MAX_CONSTRAINTS, description="Bonds, pockets and contacts to impose." + IMMUTABLE_NOTE
    )
    templates: list[Template] | None = Field(
        default=None, max_length=MAX_TEMPLATES, description="Structural templates for protein chains." + IMMUTABLE_NOTE
    )
    affinity: Affinity | None = Field(
        default=None, description="Also predict the binding affinity of one ligand." + IMMUTABLE_NOTE
    )
    options: PredictionOptions = Field(
        default=PredictionOptions(), description="`boltz predict` settings." + IMMUTABLE_NOTE
    )
    msa_server: MsaServer | None = Field(
        default=None,
        description="The MSA server for proteins without an MSA file; Boltz's default server if omitted."
        + IMMUTABLE_NOTE,
    )
    resources: PredictionResources = Field(
        default=PredictionResources(), description="GPUs, CPU, memory and placement of the prediction pod."
    )
    pod_metadata: PodMetadata | None = Field(
        default=None, description="Extra labels and annotations for the prediction pod."
    )
    timeout_seconds: int = Field(
        default=3600,
        ge=60,
        description="Time limit of the run in seconds, across all attempts (the Job's activeDeadlineSeconds).",
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries after retryable failures (node or GPU errors, store outages). Invalid input, an "
        "unusable model cache and GPU out-of-memory fail at once; preemption and eviction are not counted.",
    )
    results: ResultsStore | None = Field(
        default=None,
        description="Where to store the results: exactly one of s3, pvc. The operator's default store if omitted."
        + IMMUTABLE_NOTE,
    )
    queue_name: str | None = Field(
        default=None, max_length=253, description="Kueue LocalQueue to submit the Job to (kueue.x-k8s.io/queue-name)."
    )
    priority_class_name: str | None = Field(default=None, max_length=253, description="PriorityClass of the pod.")
    notify: Notify | None = notify_field()


# ---------------------------------------------------------------------------------------------- status


class PredictionPhase(str, Enum):
    """Pending, WaitingForModelCache, Preparing, Queued, Running, Succeeded or Failed."""

    PENDING = "Pending"
    WAITING_FOR_MODEL_CACHE = "WaitingForModelCache"
    PREPARING = "Preparing"  # the CPU prepare Job: boltz's input checks, MSAs (or waiting to fetch one)
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PredictionConditionType(str, Enum):
    MODEL_CACHE_READY = "ModelCacheReady"
    PREPARED = "Prepared"
    JOB_CREATED = "JobCreated"
    COMPLETE = "Complete"
    FAILED = "Failed"


class PredictionResults(StatusModel):
    """Where the results are and the headline scores of the best sample."""

    uri: str | None = Field(default=None, description="Base URI of the results (s3://... or pvc://claim/path).")
    structures: list[str] = Field(default=[], description="URIs of the predicted structure files, best first.")
    confidence_score: float | None = Field(
        default=None, description="Boltz confidence score of the best sample (0..1)."
    )
    ptm: float | None = Field(default=None, description="Predicted TM-score.")
    iptm: float | None = Field(default=None, description="Interface predicted TM-score.")
    complex_plddt: float | None = Field(default=None, description="Average pLDDT of the complex.")
    affinity_pred_value: float | None = Field(
        default=None, description="Predicted affinity, log10(IC50) with IC50 in µM (lower binds tighter)."
    )
    affinity_probability_binary: float | None = Field(
        default=None, description="Probability that the ligand is a binder (0..1)."
    )
    report: str | None = Field(
        default=None, description="URI of the HTML report (scores, pLDDT, PAE, 3D view), readable offline."
    )


class MsaSourceName(str, Enum):
    GIVEN = "given"
    EMPTY = "empty"
    REUSED = "reused"
    FETCHED = "fetched"


class ChainMsaStatus(StatusModel):
    """Where a protein chain's MSA came from."""

    chain: str = Field(description="Chain id.")
    source: MsaSourceName = Field(
        description="given (a file in the spec), empty (single-sequence mode), reused (found in the MSA store) or "
        "fetched (computed by the MSA server during prepare, then stored)."
    )


class BoltzPredictionStatus(KindStatus[PredictionPhase]):
    """Observed state of a BoltzPrediction, written by the operator."""

    conditions: list[Condition] = conditions_field(
        "Conditions: ModelCacheReady, Prepared, JobCreated, Complete, Failed."
    )
    msa: list[ChainMsaStatus] | None = Field(
        default=None, description="Each protein chain's MSA and where it came from, once prepared."
    )
    job_name: str | None = Field(default=None, description="Name of the GPU Job running the prediction.")
    attempts: int | None = Field(default=None, ge=0, description="Pods started for the run so far.")
    start_time: datetime | None = Field(default=None, description="When the Job started.")
    completion_time: datetime | None = Field(default=None, description="When the run succeeded or failed.")
    results: PredictionResults | None = Field(default=None, description="Results location and scores, once Succeeded.")
    notifications: list[NotificationRecord] | None = notifications_field()


class BoltzPrediction(StatusModel):
    """A whole BoltzPrediction object: `BoltzPrediction.model_validate(body)` on a kopf body or API dict."""

    api_version: Literal["boltz-operator.io/v1alpha1"] = API_VERSION
    kind: Literal["BoltzPrediction"] = "BoltzPrediction"
    metadata: dict[str, Any] = {}
    spec: BoltzPredictionSpec
    status: BoltzPredictionStatus = BoltzPredictionStatus()


PREDICTION_RESOURCE = ResourceKind(
    kind="BoltzPrediction",
    plural="boltzpredictions",
    singular="boltzprediction",
    short_names=("bp", "bpred"),
    spec_model=BoltzPredictionSpec,
    status_model=BoltzPredictionStatus,
    description=(
        "BoltzPrediction runs one Boltz-2 structure (and optionally affinity) prediction: a CPU prepare Job "
        "(boltz's input checks, MSAs computed once per sequence) then a GPU Job, and reports where the results are "
        "and their scores."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Where the run is."),
        PrinterColumn(
            "Confidence", ".status.results.confidenceScore", "number", "Confidence score of the best sample."
        ),
        PrinterColumn("Affinity", ".status.results.affinityPredValue", "number", "Predicted log10(IC50 / µM)."),
        AGE_COLUMN,
    ),
)

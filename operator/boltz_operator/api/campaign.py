"""BoltzGenCampaign: one BoltzGen design spec -> N design shards (an Indexed Job) -> one filter Job.

The design spec itself (`spec.designSpec`, BoltzGen's design language) is in `design_spec`; this module holds the
campaign around it: the BoltzGen run settings, sharding, scheduling, and the status.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, StringConstraints, WithJsonSchema, model_validator

from .common import (
    AGE_COLUMN,
    API_VERSION,
    CelRule,
    ComputeResources,
    Condition,
    KindStatus,
    KubeModel,
    NodeSelector,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    Quantity,
    ResourceKind,
    ResultsStore,
    StatusModel,
    Toleration,
    conditions_field,
    immutable_rule,
    with_spot,
)
from .design_spec import DesignSpec
from .notify import NotificationRecord, Notify, notifications_field, notify_field

# ---------------------------------------------------------------------------------------------- limits

MAX_DESIGNS = 1_000_000
MAX_SHARDS = 1000
# shards: auto -> ceil(numDesigns / AUTO_DESIGNS_PER_SHARD), at most AUTO_MAX_SHARDS.
AUTO_DESIGNS_PER_SHARD = 100
AUTO_MAX_SHARDS = 200
DEFAULT_BUDGET = 30  # boltzgen's own default for --budget
MAX_TOP_DESIGNS = 10

# ---------------------------------------------------------------------------------------------- run settings


class Protocol(str, Enum):
    """BoltzGen's --protocol (boltzgen 0.3.2 cli `protocol_configs`)."""

    PROTEIN_ANYTHING = "protein-anything"
    PEPTIDE_ANYTHING = "peptide-anything"
    PROTEIN_SMALL_MOLECULE = "protein-small_molecule"
    NANOBODY_ANYTHING = "nanobody-anything"
    ANTIBODY_ANYTHING = "antibody-anything"
    PROTEIN_REDESIGN = "protein-redesign"


class FilterOperator(str, Enum):
    GREATER = ">"
    LESS = "<"


MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]+$", min_length=1, max_length=128)]


class MetricFilter(KubeModel):
    """A hard filter on one metric: keep designs with metric > threshold (or <)."""

    metric: MetricName = Field(description="Metric column of BoltzGen's metrics (e.g. design_ALA, filter_rmsd_design).")
    operator: FilterOperator = Field(description="> keeps designs above the threshold (higher is better), < below.")
    threshold: float = Field(description="The threshold.")


class MetricWeight(KubeModel):
    """Inverse importance of a metric in the ranking (larger down-weights it); no weight removes the metric."""

    metric: MetricName = Field(description="Metric column (e.g. plip_hbonds_refolded).")
    weight: float | None = Field(default=None, ge=0, description="Inverse-importance weight; omit to drop the metric.")


class SizeBucket(KubeModel):
    """At most count final designs whose designed length lies in minLength..maxLength."""

    cel_rules = (CelRule(rule="self.minLength <= self.maxLength", message="minLength must not exceed maxLength"),)

    min_length: int = Field(ge=1, le=100000, description="Shortest length of the bucket.")
    max_length: int = Field(ge=1, le=100000, description="Longest length of the bucket.")
    count: int = Field(ge=0, le=MAX_DESIGNS, description="Most final designs from this bucket.")


class StepOptions(KubeModel):
    """The BoltzGen step settings a campaign may change (an allow-list of `boltzgen run` flags). Omitted
    fields keep BoltzGen's (protocol-specific) defaults."""

    diffusion_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Designs sampled per trunk run (--diffusion_batch_size). Designs in one batch share a sampled "
        "length. BoltzGen's default depends on the designs per run (1 below 100, else 10).",
    )
    step_scale: float | None = Field(
        default=None, gt=0, le=10, description="Fixed diffusion step scale (--step_scale); a schedule if omitted."
    )
    noise_scale: float | None = Field(
        default=None, gt=0, le=10, description="Fixed diffusion noise scale (--noise_scale); a schedule if omitted."
    )
    inverse_fold_num_sequences: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Sequences per backbone from inverse folding (--inverse_fold_num_sequences); BoltzGen's default "
        "is 1. Each one is a design to refold and score: a campaign produces numDesigns x this many designs (ids "
        "<design>_<k>), and needs that much more GPU time and analysis.",
    )
    inverse_fold_avoid: str | None = Field(
        default=None,
        max_length=20,
        pattern=r"^[ACDEFGHIKLMNPQRSTVWY]*$",
        description="Amino acids inverse folding must not use (--inverse_fold_avoid), e.g. C; empty allows all. "
        "BoltzGen avoids C for peptide, nanobody and antibody protocols by default.",
    )
    alpha: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Quality/diversity trade-off of the final selection (--alpha): 0 quality only, 1 diversity "
        "only. BoltzGen's default: 0.01 for peptide-anything, 0.001 otherwise.",
    )
    filter_biased: bool | None = Field(
        default=None, description="Remove amino-acid composition outliers (--filter_biased); BoltzGen's default true."
    )
    refolding_rmsd_threshold: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Largest RMSD in Ångström between design and refolded structure (--refolding_rmsd_threshold).",
    )
    additional_filters: list[MetricFilter] | None = Field(
        default=None, max_length=32, description="Extra hard filters on metrics (--additional_filters)."
    )
    metrics_override: list[MetricWeight] | None = Field(
        default=None, max_length=32, description="Ranking weights of metrics (--metrics_override)."
    )
    size_buckets: list[SizeBucket] | None = Field(
        default=None, max_length=32, description="Caps on final designs per length range (--size_buckets)."
    )


class CampaignResources(ComputeResources):
    """What each pod asks for and where it may run: every design shard pod, and the filter pod (boltzgen checks for
    a CUDA device before any step, filtering included)."""

    cpu: Quantity | None = Field(
        default=None,
        description="CPU request and limit of each pod (e.g. 8); the operator's default (chart value workers.cpu, 8) "
        "if omitted. BoltzGen's analysis step runs one process per CPU, each about 1.3 GB of memory once loaded: "
        "see memory.",
    )
    memory: Quantity | None = Field(
        default=None,
        description="Memory request and limit of each pod (e.g. 64Gi); the operator's default (chart value "
        "workers.memory, 64Gi) if omitted. Give at least 1.3 GB per CPU: BoltzGen's analysis step runs one process "
        "per CPU and each takes about 1.3 GB just to load (boltzgen 0.3.2, measured). With less, the worker runs "
        "only as many processes as the memory holds (a slower analysis) and the campaign's condition "
        "AnalysisMemory is False, saying how much is needed. A process killed for memory anyway loses designs "
        "while BoltzGen still exits 0: a shard missing more than 5% of its designs fails as HostOutOfMemory. The "
        "defaults give 8 GiB per CPU.",
    )

    gpus: int | None = Field(
        default=None, ge=1, le=8, description="GPUs per shard pod; the operator's default (usually 1) if omitted."
    )
    node_selector: NodeSelector | None = Field(default=None, description="Node labels the pods must match.")
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Tolerations of the pods.")


Shards = Annotated[
    Annotated[int, Strict()] | Literal["auto"],
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "x-kubernetes-validations": [
                {
                    "rule": f"type(self) == int ? (self >= 1 && self <= {MAX_SHARDS}) : self == 'auto'",
                    "message": f"shards must be an integer 1..{MAX_SHARDS} or auto",
                }
            ],
        }
    ),
]


def auto_shards(num_designs: int) -> int:
    """shards: auto -> one shard per 100 designs, at most 200 (and never more shards than designs)."""
    return max(1, min(AUTO_MAX_SHARDS, math.ceil(num_designs / AUTO_DESIGNS_PER_SHARD), num_designs))


# ---------------------------------------------------------------------------------------------- spec

IMMUTABLE_FIELDS = (
    "modelCache",
    "designSpec",
    "protocol",
    "numDesigns",
    "budget",
    "shards",
    "minSuccessfulShardFraction",
    "stepOptions",
    "results",
)
IMMUTABLE_NOTE = " Immutable after creation."

SPEC_RULES = (
    CelRule(
        rule="!has(self.budget) || self.budget <= self.numDesigns",
        message="budget must not exceed numDesigns",
        field_path=".budget",
    ),
    CelRule(
        rule="type(self.shards) == string || self.shards <= self.numDesigns",
        message="shards must not exceed numDesigns",
        field_path=".shards",
    ),
    CelRule(
        rule="!has(self.parallelism) || type(self.shards) == string || self.parallelism <= self.shards",
        message="parallelism must not exceed shards",
        field_path=".parallelism",
    ),
) + tuple(immutable_rule(alias, "BoltzGenCampaign") for alias in IMMUTABLE_FIELDS)


class BoltzGenCampaignSpec(KubeModel):
    """Desired state of a BoltzGenCampaign. The fields that define the run (modelCache, designSpec, protocol,
    numDesigns, budget, shards, minSuccessfulShardFraction, stepOptions, results) are immutable after creation:
    create a new BoltzGenCampaign to re-run. Scheduling fields (parallelism, resources, spot, podMetadata,
    timeoutSeconds, retriesPerShard, queueName, priorityClassName) may change; they apply to Jobs created
    afterwards (a change during the design step reaches the filter Job only)."""

    cel_rules = SPEC_RULES

    model_cache: ObjectName = Field(
        default="default",
        description="Name of the BoltzModelCache (same namespace) holding the BoltzGen weights. "
        "The campaign waits until it is Ready." + IMMUTABLE_NOTE,
    )
    design_spec: DesignSpec = Field(
        description="BoltzGen's design specification (entities and constraints), in camelCase; target "
        "structures by reference (configMapKeyRef or s3)." + IMMUTABLE_NOTE
    )
    protocol: Protocol = Field(
        default=Protocol.PROTEIN_ANYTHING,
        description="BoltzGen protocol: protein-anything, peptide-anything, protein-small_molecule, "
        "nanobody-anything, antibody-anything or protein-redesign." + IMMUTABLE_NOTE,
    )
    num_designs: int = Field(
        ge=1,
        le=MAX_DESIGNS,
        description="Designs to generate across all shards (BoltzGen suggests 10,000 to 60,000 for real work)."
        + IMMUTABLE_NOTE,
    )
    budget: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DESIGNS,
        description=f"Designs in the final quality- and diversity-ranked set (at most numDesigns). "
        f"BoltzGen's default ({DEFAULT_BUDGET}, or numDesigns if fewer) if omitted." + IMMUTABLE_NOTE,
    )
    shards: Shards = Field(
        default="auto",
        description=f"Design shards (indexes of one Indexed Job; each generates its share of numDesigns): an "
        f"integer 1..{MAX_SHARDS} (at most numDesigns), or auto: ceil(numDesigns / {AUTO_DESIGNS_PER_SHARD}), "
        f"at most {AUTO_MAX_SHARDS}." + IMMUTABLE_NOTE,
    )
    parallelism: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SHARDS,
        description="Most shard pods (and so GPU sets) running at once; all shards if omitted. Read when the design "
        "Job is created: a change later does not reach it (the operator never modifies a Job).",
    )
    min_successful_shard_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Fraction of shards that must succeed (after retries) for the campaign to go on to filtering "
        "with the designs it has; below it the campaign fails." + IMMUTABLE_NOTE,
    )
    step_options: StepOptions = Field(
        default=StepOptions(), description="Allow-listed BoltzGen step settings." + IMMUTABLE_NOTE
    )
    resources: CampaignResources = Field(
        default=CampaignResources(), description="GPUs, CPU, memory and placement of the shard pods."
    )
    spot: bool = Field(
        default=False,
        description="true: tolerate the usual spot/preemptible node taints (cloud.google.com/gke-spot, "
        "cloud.google.com/gke-preemptible, kubernetes.azure.com/scalesetpriority=spot, "
        "eks.amazonaws.com/capacityType=SPOT, karpenter.sh/capacity-type=spot, all NoSchedule). Preempted "
        "shards are re-run and not counted as retries.",
    )
    pod_metadata: PodMetadata | None = Field(default=None, description="Extra labels and annotations for the pods.")
    results: ResultsStore | None = Field(
        default=None,
        description="Where to store the designs: exactly one of s3, pvc. The operator's default store if omitted."
        + IMMUTABLE_NOTE,
    )
    queue_name: str | None = Field(
        default=None, max_length=253, description="Kueue LocalQueue to submit the Jobs to (kueue.x-k8s.io/queue-name)."
    )
    priority_class_name: str | None = Field(default=None, max_length=253, description="PriorityClass of the pods.")
    notify: Notify | None = notify_field()
    timeout_seconds: int = Field(
        default=86400,
        ge=60,
        description="Time limit in seconds of the design Job (across all shards and attempts), and again of the "
        "filter Job (their activeDeadlineSeconds).",
    )
    retries_per_shard: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a shard after retryable failures (backoffLimitPerIndex). A shard out of GPU memory, "
        "or short of designs for lack of host memory (HostOutOfMemory), fails without retries (the shard only); invalid input and an unusable model cache fail the campaign at once; "
        "preemption and eviction are not counted.",
    )

    @model_validator(mode="after")
    def _check_counts(self):
        if self.budget is not None and self.budget > self.num_designs:
            raise ValueError("budget must not exceed numDesigns")
        if isinstance(self.shards, int) and not 1 <= self.shards <= min(MAX_SHARDS, self.num_designs):
            raise ValueError(f"shards must be an integer 1..{MAX_SHARDS}, at most numDesigns, or auto")
        # As the CRD's rule: only against an explicit count. With shards: auto the count follows numDesigns, and a
        # larger parallelism is harmless (the design Job's is capped at the shard count); refusing it here would
        # turn an edit the apiserver accepted (parallelism is mutable) into a Failed campaign with running Jobs.
        if self.parallelism is not None and isinstance(self.shards, int) and self.parallelism > self.shards:
            raise ValueError("parallelism must not exceed shards")
        return self

    @property
    def shard_count(self) -> int:
        """The number of shards, with auto resolved."""
        return auto_shards(self.num_designs) if self.shards == "auto" else int(self.shards)

    @property
    def effective_budget(self) -> int:
        return self.budget if self.budget is not None else min(DEFAULT_BUDGET, self.num_designs)

    def designs_in_shard(self, index: int) -> int:
        """Designs shard `index` generates: numDesigns split as evenly as possible, lower indexes first."""
        base, extra = divmod(self.num_designs, self.shard_count)
        return base + (1 if index < extra else 0)

    @property
    def tolerations(self) -> list[Toleration]:
        """The pods' tolerations: resources.tolerations, plus SPOT_TOLERATIONS when spot."""
        return with_spot(self.resources.tolerations, self.spot)


# ---------------------------------------------------------------------------------------------- status


class CampaignPhase(str, Enum):
    """Pending, WaitingForModelCache, Designing, Filtering, Succeeded or Failed."""

    PENDING = "Pending"
    WAITING_FOR_MODEL_CACHE = "WaitingForModelCache"
    DESIGNING = "Designing"
    FILTERING = "Filtering"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class CampaignConditionType(str, Enum):
    MODEL_CACHE_READY = "ModelCacheReady"
    DESIGN_JOB_CREATED = "DesignJobCreated"
    DESIGNS_COMPLETE = "DesignsComplete"  # enough shards succeeded (minSuccessfulShardFraction)
    FILTER_JOB_CREATED = "FilterJobCreated"
    ANALYSIS_MEMORY = "AnalysisMemory"  # False: resources.memory cannot hold one analysis process per CPU
    COMPLETE = "Complete"
    FAILED = "Failed"


class CampaignProgress(StatusModel):
    """Counts of shards and designs."""

    shards_total: int | None = Field(default=None, ge=0, description="Shards of the design Job.")
    shards_succeeded: int | None = Field(default=None, ge=0, description="Shards that finished.")
    shards_failed: int | None = Field(default=None, ge=0, description="Shards that failed after their retries.")
    shards_running: int | None = Field(
        default=None, ge=0, description="Shards with a pod now (running, or waiting for a node)."
    )
    designs_requested: int | None = Field(
        default=None,
        ge=0,
        description="numDesigns x inverseFoldNumSequences: each inverse-folded sequence is a design of its own.",
    )
    designs_completed: int | None = Field(
        default=None,
        ge=0,
        description="Designs of the finished shards (their share of numDesigns); once filtered, the designs merged.",
    )
    designs_produced: int | None = Field(
        default=None,
        ge=0,
        description="Designs the merged shards produced (rows of their metrics), counted by the filter. A shard may "
        "be short by up to 5% (designs BoltzGen could not analyse); more fails it as HostOutOfMemory.",
    )
    designs_dropped_as_duplicates: int | None = Field(
        default=None,
        ge=0,
        description="Designs BoltzGen's filter dropped before ranking because an earlier design had the same designed "
        "sequence (it keeps the first): why a campaign can select fewer than budget.",
    )
    designs_selected: int | None = Field(default=None, ge=0, description="Designs in the final set (at most budget).")


class CampaignEstimate(StatusModel):
    """A rough cost estimate, written when the campaign starts."""

    gpu_hours: float | None = Field(default=None, ge=0, description="Estimated GPU hours for all designs.")
    basis: str | None = Field(
        default=None, description="Where the per-design figure comes from (a measurement or a published figure)."
    )


class TopDesign(StatusModel):
    """One of the best final designs."""

    rank: int = Field(ge=1, description="Rank in the final set (1 is best).")
    id: str = Field(description="BoltzGen's design id (the structure file's name without extension).")
    sequence: str | None = Field(default=None, description="Designed sequence (chains separated by ':').")
    metrics: dict[str, float] = Field(default={}, description="Headline metrics (e.g. design_iptm, filter_rmsd).")


class CampaignResults(StatusModel):
    """Where the designs are, and the best few."""

    uri: str | None = Field(default=None, description="Base URI of the results (s3://... or pvc://claim/path).")
    final_designs_uri: str | None = Field(
        default=None, description="URI of the final quality- and diversity-ranked set (final_<budget>_designs)."
    )
    metrics_csv_uri: str | None = Field(
        default=None, description="URI of the metrics table of all designs considered (all_designs_metrics.csv)."
    )
    top_designs: list[TopDesign] = Field(
        default=[], description=f"The best final designs, best first (at most {MAX_TOP_DESIGNS})."
    )
    report: str | None = Field(
        default=None,
        description="URI of the HTML report (selected designs, metric distributions), readable offline.",
    )


class BoltzGenCampaignStatus(KindStatus[CampaignPhase]):
    """Observed state of a BoltzGenCampaign, written by the operator."""

    conditions: list[Condition] = conditions_field(
        "Conditions: ModelCacheReady, DesignJobCreated, DesignsComplete, FilterJobCreated, Complete, "
        "Failed; AnalysisMemory (False: resources.memory is below 1.3 GB per CPU for BoltzGen's analysis processes)."
    )
    shards: str | None = Field(default=None, description="Succeeded/total shards as text (for kubectl get).")
    progress: CampaignProgress | None = Field(default=None, description="Counts of shards and designs.")
    estimate: CampaignEstimate | None = Field(default=None, description="Estimated GPU hours and its basis.")
    results: CampaignResults | None = Field(default=None, description="Results location and best designs.")
    job_names: list[str] = Field(default=[], description="Names of the design and filter Jobs.")
    start_time: datetime | None = Field(default=None, description="When the design Job started.")
    completion_time: datetime | None = Field(default=None, description="When the campaign succeeded or failed.")
    notifications: list[NotificationRecord] | None = notifications_field()


class BoltzGenCampaign(StatusModel):
    """A whole BoltzGenCampaign object: `BoltzGenCampaign.model_validate(body)` on a kopf body or API dict."""

    api_version: Literal["boltz-operator.io/v1alpha1"] = API_VERSION
    kind: Literal["BoltzGenCampaign"] = "BoltzGenCampaign"
    metadata: dict[str, Any] = {}
    spec: BoltzGenCampaignSpec
    status: BoltzGenCampaignStatus = BoltzGenCampaignStatus()


CAMPAIGN_RESOURCE = ResourceKind(
    kind="BoltzGenCampaign",
    plural="boltzgencampaigns",
    singular="boltzgencampaign",
    short_names=("bgc",),
    spec_model=BoltzGenCampaignSpec,
    status_model=BoltzGenCampaignStatus,
    description=(
        "BoltzGenCampaign runs one BoltzGen design campaign: numDesigns designs generated by GPU shards of an "
        "Indexed Job, then one filter Job that ranks them and selects a diverse final set of budget designs."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Where the campaign is."),
        PrinterColumn("Shards", ".status.shards", "string", "Succeeded/total shards."),
        PrinterColumn("Designs", ".status.progress.designsCompleted", "integer", "Designs generated so far."),
        AGE_COLUMN,
    ),
)

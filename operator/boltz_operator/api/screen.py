"""BoltzScreen: a library of ligands against one target. A CPU prepare Job (the target checked by boltz once, its
MSAs computed once, the library read and sliced), an Indexed Job of GPU shards (one `boltz predict` per shard: the
models load once per shard), a CPU rank Job (one ranked table, the top K in status).

The target speaks the BoltzPrediction input language (api/boltz_input.py); each library ligand joins it as chain
`ligandChain`, the affinity binder unless `affinity: false`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import Field, model_validator

from boltz_contract.screen import LIGAND_ID_PATTERN, MAX_LIGANDS

from .boltz_input import MAX_CONSTRAINTS, MAX_SEQUENCES, MAX_TEMPLATES, Constraint, MsaServer, SequenceEntry, Template
from .common import (
    AGE_COLUMN,
    API_VERSION,
    MAX_SMILES_LENGTH,
    CcdCode,
    CelRule,
    ChainId,
    Condition,
    KeyRef,
    KindStatus,
    KubeModel,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    ResourceKind,
    ResultsStore,
    S3File,
    StatusModel,
    Toleration,
    cel_ids,
    conditions_field,
    immutable_rule,
    with_spot,
)
from .notify import NotificationRecord, Notify, notifications_field, notify_field
from .prediction import ChainMsaStatus, PredictionOptions, PredictionResources

MAX_INLINE_LIGANDS = 1000  # a larger library goes in a ConfigMap key (up to 1 MiB) or an S3 object
MAX_LIGANDS_PER_SHARD = 10_000
MAX_TOP_K = 100
IMMUTABLE_NOTE = " Immutable after creation."


class LibraryFormat(str, Enum):
    SMI = "smi"
    CSV = "csv"
    SDF = "sdf"


class LibraryLigand(KubeModel):
    """One ligand of an inline library. Exactly one of smiles, ccd."""

    one_of = ("smiles", "ccd")

    id: str = Field(
        pattern=LIGAND_ID_PATTERN,
        max_length=64,
        description="Unique id (letters, digits, . _ -; it names the ligand's result files).",
    )
    smiles: str | None = Field(default=None, min_length=1, max_length=MAX_SMILES_LENGTH, description="SMILES.")
    ccd: CcdCode | None = Field(default=None, description="Chemical Component Dictionary code.")


class ScreenLibrary(KubeModel):
    """The ligands: exactly one of inline, configMapKeyRef, s3. Files are .smi (SMILES, then id, per line), .csv
    (columns idColumn and smilesColumn) or .sdf (read with RDKit; the id from idProperty, default the title line).
    An entry RDKit cannot parse is recorded as failed with the reason; duplicate ids fail the screen."""

    one_of = ("inline", "config_map_key_ref", "s3")
    cel_rules = (
        CelRule(
            rule="has(self.inline) || has(self.format) || (has(self.configMapKeyRef) ? self.configMapKeyRef.key "
            ": self.s3.uri).matches('(?i)[.](smi|csv|sdf)$')",
            message="library.format: give smi, csv or sdf (the file's name ends in none of .smi, .csv, .sdf)",
            field_path=".format",
        ),
    )

    inline: list[LibraryLigand] | None = Field(
        default=None,
        max_length=MAX_INLINE_LIGANDS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
        description=f"Up to {MAX_INLINE_LIGANDS} ligands (ids unique); larger libraries in a file.",
    )
    config_map_key_ref: KeyRef | None = Field(default=None, description="A library file in a ConfigMap key.")
    s3: S3File | None = Field(default=None, description="A library file in S3 (the results store's credentials).")
    format: LibraryFormat | None = Field(
        default=None, description="smi, csv or sdf; from the key's or object's extension if omitted."
    )
    id_column: str = Field(default="id", max_length=128, description="csv: the column holding ligand ids.")
    smiles_column: str = Field(default="smiles", max_length=128, description="csv: the column holding SMILES.")
    id_property: str = Field(
        default="_Name", max_length=128, description="sdf: the property holding ids (_Name: the title line)."
    )

    def file_format(self) -> LibraryFormat | None:
        """The format of a library file: `format`, else the extension; None for inline or an unknown extension."""
        if self.format is not None:
            return self.format
        name = self.config_map_key_ref.key if self.config_map_key_ref else self.s3.uri if self.s3 else None
        extension = (name or "").rsplit(".", 1)[-1].lower()
        return next((f for f in LibraryFormat if f.value == extension), None)


class ScreenTarget(KubeModel):
    """The fixed part of the complex, as in a BoltzPrediction: proteins, DNA/RNA, fixed ligands or cofactors,
    modifications, pocket/contact constraints, templates, MSAs."""

    sequences: list[SequenceEntry] = Field(min_length=1, max_length=MAX_SEQUENCES - 1, description="The chains.")
    constraints: list[Constraint] | None = Field(default=None, max_length=MAX_CONSTRAINTS, description="Constraints.")
    templates: list[Template] | None = Field(default=None, max_length=MAX_TEMPLATES, description="Templates.")


IMMUTABLE_FIELDS = (
    "modelCache",
    "target",
    "library",
    "ligandChain",
    "affinity",
    "options",
    "msaServer",
    "ligandsPerShard",
    "minSuccessfulShardFraction",
    "topK",
    "results",
)

SPEC_RULES = (
    CelRule(
        rule=f"!self.target.sequences.exists(s, self.ligandChain in {cel_ids('s')})",
        message="ligandChain must not be a chain id of the target",
        field_path=".ligandChain",
    ),
    CelRule(
        rule="!has(self.library.format) || !has(self.library.inline)",
        message="library.format is for a library file (configMapKeyRef or s3), not an inline one",
        field_path=".library.format",
    ),
) + tuple(immutable_rule(alias, "BoltzScreen") for alias in IMMUTABLE_FIELDS)


class BoltzScreenSpec(KubeModel):
    """Desired state of a BoltzScreen. The fields that define the run are immutable after creation; scheduling
    fields (parallelism, resources, spot, podMetadata, timeoutSeconds, retriesPerShard, queueName,
    priorityClassName) may change and apply to Jobs created afterwards."""

    cel_rules = SPEC_RULES

    model_cache: ObjectName = Field(
        default="default", description="The BoltzModelCache (same namespace) to use." + IMMUTABLE_NOTE
    )
    target: ScreenTarget = Field(description="The fixed part of the complex." + IMMUTABLE_NOTE)
    library: ScreenLibrary = Field(description="The ligands to screen." + IMMUTABLE_NOTE)
    ligand_chain: ChainId = Field(
        default="L", description="The chain id each library ligand takes in the complex." + IMMUTABLE_NOTE
    )
    affinity: bool = Field(
        default=True,
        description="Predict each ligand's binding affinity (the ranking figure); false: a structure-only screen "
        "ranked by the ligand's ipTM." + IMMUTABLE_NOTE,
    )
    options: PredictionOptions = Field(
        default=PredictionOptions(), description="`boltz predict` settings, as for predictions." + IMMUTABLE_NOTE
    )
    msa_server: MsaServer | None = Field(
        default=None, description="The MSA server for the target's proteins without an MSA file." + IMMUTABLE_NOTE
    )
    ligands_per_shard: int = Field(
        default=50,
        ge=1,
        le=MAX_LIGANDS_PER_SHARD,
        description="Ligands per GPU shard: one boltz predict (one model load) each. More per shard spreads the "
        "model load thinner; fewer loses less to a preemption." + IMMUTABLE_NOTE,
    )
    parallelism: int | None = Field(
        default=None, ge=1, le=1000, description="Most shard pods (GPUs) at once; every shard if omitted."
    )
    retries_per_shard: int = Field(
        default=2, ge=0, le=10, description="Retries of a shard after retryable failures (backoffLimitPerIndex)."
    )
    min_successful_shard_fraction: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Fraction of shards that must succeed for the screen to be ranked; below it, Failed."
        + IMMUTABLE_NOTE,
    )
    top_k: int = Field(
        default=20, ge=0, le=MAX_TOP_K, description="Best ligands shown in status.results.topLigands." + IMMUTABLE_NOTE
    )
    results: ResultsStore | None = Field(
        default=None,
        description="Where the table and structures go; the operator's default if omitted." + IMMUTABLE_NOTE,
    )
    resources: PredictionResources = Field(
        default=PredictionResources(), description="GPUs, CPU, memory and placement of the shard pods."
    )
    spot: bool = Field(default=False, description="true: tolerate the usual spot node taints (as campaigns).")
    pod_metadata: PodMetadata | None = Field(default=None, description="Extra labels and annotations for the pods.")
    queue_name: str | None = Field(default=None, max_length=253, description="Kueue LocalQueue of the Jobs.")
    priority_class_name: str | None = Field(default=None, max_length=253, description="PriorityClass of the pods.")
    notify: Notify | None = notify_field()
    timeout_seconds: int = Field(
        default=86400, ge=60, description="Time limit of the shard Job (all shards, all attempts), in seconds."
    )

    @property
    def tolerations(self) -> list[Toleration]:
        """The shard pods' tolerations: resources.tolerations, plus SPOT_TOLERATIONS when spot."""
        return with_spot(self.resources.tolerations, self.spot)

    @model_validator(mode="after")
    def _check(self):
        ids = {i for entry in self.target.sequences for i in entry.entity.ids}
        if self.ligand_chain in ids:
            raise ValueError("ligandChain must not be a chain id of the target")
        if self.library.inline is None and self.library.file_format() is None:
            raise ValueError("library.format: give smi, csv or sdf (the file's extension says none of them)")
        return self


class ScreenPhase(str, Enum):
    """Pending, WaitingForModelCache, Preparing, Screening, Ranking, Succeeded or Failed."""

    PENDING = "Pending"
    WAITING_FOR_MODEL_CACHE = "WaitingForModelCache"
    PREPARING = "Preparing"
    SCREENING = "Screening"
    RANKING = "Ranking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ScreenConditionType(str, Enum):
    MODEL_CACHE_READY = "ModelCacheReady"
    PREPARED = "Prepared"
    SHARDS_COMPLETE = "ShardsComplete"
    COMPLETE = "Complete"
    FAILED = "Failed"


class ScreenProgress(StatusModel):
    """Counts of ligands and shards (ligands done count the finished shards' ligands)."""

    ligands_total: int | None = Field(default=None, ge=0, description="Ligands in the library.")
    ligands_done: int | None = Field(default=None, ge=0, description="Ligands of the finished shards.")
    ligands_failed: int | None = Field(
        default=None, ge=0, description="Ligands that failed: unparsable, refused by boltz, out of GPU memory."
    )
    shards_total: int | None = Field(default=None, ge=0, description="Shards of the shard Job.")
    shards_succeeded: int | None = Field(default=None, ge=0, description="Shards that finished.")
    shards_failed: int | None = Field(default=None, ge=0, description="Shards that failed after their retries.")


class ScreenEstimate(StatusModel):
    gpu_hours: float | None = Field(default=None, ge=0, description="Estimated GPU hours, written before the shards.")
    basis: str | None = Field(default=None, description="Where the per-ligand and per-shard figures come from.")


class RankedLigandStatus(StatusModel):
    """One of the best ligands (boltz's figures of its best sample)."""

    rank: int = Field(ge=1, description="1 is best.")
    id: str = Field(description="The ligand's id in the library.")
    smiles: str | None = Field(default=None, description="Its SMILES, when given as one.")
    affinity_pred_value: float | None = Field(
        default=None, description="Predicted affinity, log10(IC50) with IC50 in µM (lower binds tighter)."
    )
    affinity_probability_binary: float | None = Field(
        default=None, description="Probability that the ligand is a binder (0..1)."
    )
    iptm: float | None = Field(default=None, description="Interface pTM of the complex.")
    ligand_iptm: float | None = Field(default=None, description="ipTM of the ligand's interfaces.")
    confidence_score: float | None = Field(default=None, description="Boltz confidence score (0..1).")


class ScreenResults(StatusModel):
    uri: str | None = Field(default=None, description="Base URI of the results.")
    table: str | None = Field(default=None, description="URI of the ranked table of every ligand (CSV).")
    parquet: str | None = Field(
        default=None,
        description="URI of the same ranked table as Parquet (typed columns, failed ligands' figures null).",
    )
    top_ligands: list[RankedLigandStatus] = Field(default=[], description="The best ligands, best first (topK).")
    report: str | None = Field(
        default=None, description="URI of the HTML report (ranked table, distributions), readable offline."
    )


class BoltzScreenStatus(KindStatus[ScreenPhase]):
    """Observed state of a BoltzScreen, written by the operator."""

    conditions: list[Condition] = conditions_field(
        "Conditions: ModelCacheReady, Prepared, ShardsComplete, Complete, Failed."
    )
    ligands: str | None = Field(default=None, description="Done/total ligands as text (for kubectl get).")
    best: float | None = Field(
        default=None, description="The best ligand's affinityProbabilityBinary (ligand ipTM without affinity)."
    )
    progress: ScreenProgress | None = Field(default=None, description="Counts of ligands and shards.")
    msa: list[ChainMsaStatus] | None = Field(
        default=None, description="Each target protein chain's MSA and where it came from, once prepared."
    )
    estimate: ScreenEstimate | None = Field(default=None, description="Estimated GPU hours and its basis.")
    results: ScreenResults | None = Field(default=None, description="The ranked table and the top ligands.")
    job_names: list[str] = Field(default=[], description="Names of the prepare, shard and rank Jobs.")
    completion_time: datetime | None = Field(default=None, description="When the screen succeeded or failed.")
    notifications: list[NotificationRecord] | None = notifications_field()


class BoltzScreen(StatusModel):
    api_version: Literal["boltz-operator.io/v1alpha1"] = API_VERSION
    kind: Literal["BoltzScreen"] = "BoltzScreen"
    metadata: dict[str, Any] = {}
    spec: BoltzScreenSpec
    status: BoltzScreenStatus = BoltzScreenStatus()


SCREEN_RESOURCE = ResourceKind(
    kind="BoltzScreen",
    plural="boltzscreens",
    singular="boltzscreen",
    short_names=("bscr",),
    spec_model=BoltzScreenSpec,
    status_model=BoltzScreenStatus,
    description=(
        "BoltzScreen screens a library of ligands against one target with Boltz-2: the target prepared once (its "
        "MSAs computed once), GPU shards each running one boltz predict over its ligands (the models loaded once "
        f"per shard), and one ranked table (up to {MAX_LIGANDS} ligands)."
    ),
    printer_columns=(
        PrinterColumn("Phase", ".status.phase", "string", "Where the screen is."),
        PrinterColumn("Ligands", ".status.ligands", "string", "Done/total ligands."),
        PrinterColumn("Failed", ".status.progress.ligandsFailed", "integer", "Ligands that failed."),
        PrinterColumn("Best", ".status.best", "number", "Best affinity probability (or ligand ipTM)."),
        AGE_COLUMN,
    ),
)

"""BoltzPrediction: one Boltz-2 input (sequences, constraints, templates, affinity) run as one GPU Job.

The spec follows Boltz's YAML input (https://github.com/jwohlwend/boltz/blob/main/docs/prediction.md) with
Kubernetes spellings: camelCase, chain ids always a list (`ids`), files referenced from ConfigMaps, Secrets or
S3 instead of host paths. `boltz_operator.render` turns a spec into the Boltz YAML.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from .common import (
    AGE_COLUMN,
    API_VERSION,
    IDS_DESCRIPTION,
    MAX_IDS,
    MAX_SEQUENCE_LENGTH,
    AtomName,
    AtomRef,
    CcdCode,
    CelRule,
    ChainId,
    ChainIds,
    ComputeResources,
    Condition,
    KeyRef,
    KindStatus,
    KubeModel,
    Ligand,
    NodeSelector,
    ObjectName,
    PodMetadata,
    PrinterColumn,
    ResourceKind,
    ResultsStore,
    S3File,
    SecretRef,
    StatusModel,
    Toleration,
    Url,
    cel_ids,
    cel_validations,
    conditions_field,
    immutable_rule,
)

# Bounds keep the CEL rules within the apiserver's cost limits: estimates are priced at maxItems, and the
# per-rule runtime limit (1M) is reached by a 64 x 16-id sequences list. 32 entities of up to 16 copies each is
# far more than fits a GPU.
MAX_SEQUENCES = 32
MAX_MODIFICATIONS = 64
MAX_CONSTRAINTS = 32
MAX_POCKET_CONTACTS = 24
MAX_TEMPLATES = 16
# Boltz's affinity module refuses ligands with more (heavy) atoms than this.
MAX_AFFINITY_LIGAND_ATOMS = 128

# ---------------------------------------------------------------------------------------------- sequences


class Modification(KubeModel):
    """A modified residue of a polymer chain."""

    position: int = Field(ge=1, description="Residue index, starting at 1.")
    ccd: CcdCode = Field(description="CCD code of the modified residue (e.g. SEP, MSE).")


MODIFICATIONS_IN_SEQUENCE = CelRule(
    rule="!has(self.modifications) || self.modifications.all(m, m.position <= size(self.sequence))",
    message="modifications[].position must be within the sequence (1..length)",
)


class MsaSource(KubeModel):
    """The multiple sequence alignment of a protein. Exactly one of empty, server, configMapKeyRef,
    secretKeyRef, s3. Absent means server. Boltz reads .a3m, or .csv (columns key, sequence) to pair MSAs
    across chains. Boltz cannot mix MSA files and server MSAs in one input (empty mixes with either)."""

    one_of = ("empty", "server", "config_map_key_ref", "secret_key_ref", "s3")
    cel_rules = tuple(
        CelRule(
            rule=f"!has(self.{field}) || {value}.lowerAscii().endsWith('.a3m') "
            f"|| {value}.lowerAscii().endsWith('.csv')",
            message="the MSA file name must end in .a3m or .csv (Boltz picks the parser by extension)",
        )
        for field, value in (
            ("configMapKeyRef", "self.configMapKeyRef.key"),
            ("secretKeyRef", "self.secretKeyRef.key"),
            ("s3", "self.s3.uri"),
        )
    )

    empty: bool | None = Field(
        default=None, description="true: single-sequence mode, no MSA (faster, usually less accurate)."
    )
    server: bool | None = Field(
        default=None, description="true: compute the MSA on the MSA server (spec.msaServer) when the run starts."
    )
    config_map_key_ref: KeyRef | None = Field(
        default=None, description="An .a3m or .csv file stored in a ConfigMap key (at most about 1 MiB)."
    )
    secret_key_ref: KeyRef | None = Field(default=None, description="An .a3m or .csv file stored in a Secret key.")
    s3: S3File | None = Field(default=None, description="An .a3m or .csv object in S3, downloaded when the run starts.")


class Protein(KubeModel):
    """A protein chain (or identical copies of it)."""

    cel_rules = (MODIFICATIONS_IN_SEQUENCE,)

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[A-Z]+$",
        description="Amino-acid sequence in upper-case one-letter codes, no spaces (X for unknown).",
    )
    msa: MsaSource | None = Field(
        default=None,
        description="The MSA: exactly one of empty, server, configMapKeyRef, secretKeyRef, s3. Omitted: computed "
        "by the MSA server (like server: true). Boltz cannot mix MSA files and server MSAs in one input "
        "(empty mixes with either).",
    )
    modifications: list[Modification] | None = Field(
        default=None, max_length=MAX_MODIFICATIONS, description="Modified residues."
    )
    cyclic: bool | None = Field(default=None, description="true for a cyclic peptide.")


class NucleicAcid(KubeModel):
    """A nucleic-acid chain (or identical copies of it)."""

    cel_rules = (MODIFICATIONS_IN_SEQUENCE,)

    ids: ChainIds = Field(description=IDS_DESCRIPTION)
    sequence: str
    modifications: list[Modification] | None = Field(
        default=None, max_length=MAX_MODIFICATIONS, description="Modified residues."
    )
    cyclic: bool | None = Field(default=None, description="true for a cyclic chain.")


class Dna(NucleicAcid):
    """A DNA chain (or identical copies of it)."""

    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[ACGTN]+$",
        description="DNA sequence in upper-case one-letter codes (A, C, G, T, N), no spaces.",
    )


class Rna(NucleicAcid):
    """An RNA chain (or identical copies of it)."""

    sequence: str = Field(
        min_length=1,
        max_length=MAX_SEQUENCE_LENGTH,
        pattern=r"^[ACGUN]+$",
        description="RNA sequence in upper-case one-letter codes (A, C, G, U, N), no spaces.",
    )


class SequenceEntry(KubeModel):
    """One entity of the complex. Exactly one of protein, dna, rna, ligand."""

    one_of = ("protein", "dna", "rna", "ligand")

    protein: Protein | None = Field(default=None, description="A protein chain.")
    dna: Dna | None = Field(default=None, description="A DNA chain.")
    rna: Rna | None = Field(default=None, description="An RNA chain.")
    ligand: Ligand | None = Field(default=None, description="A small molecule.")

    @property
    def entity_type(self) -> Literal["protein", "dna", "rna", "ligand"]:
        # one_of names exactly these fields
        return next(t for t in self.one_of if getattr(self, t) is not None)  # type: ignore[misc]

    @property
    def entity(self) -> Protein | NucleicAcid | Ligand:
        return getattr(self, self.entity_type)

    @property
    def ids(self) -> list[str]:
        return self.entity.ids


# ---------------------------------------------------------------------------------------------- constraints


class TokenRef(KubeModel):
    """A residue of a polymer chain, or an atom of a ligand. Exactly one of residue, atom."""

    one_of = ("residue", "atom")

    chain: ChainId = Field(description="Chain id.")
    residue: int | None = Field(default=None, ge=1, description="Residue index, starting at 1 (polymer chains).")
    atom: AtomName | None = Field(default=None, description="Atom name (ligand chains).")


MAX_DISTANCE_DESCRIPTION = "Largest allowed distance in Ångström (4 to 20)."
FORCE_DESCRIPTION = "true: enforce the constraint with a potential during sampling, not only as conditioning."


class BondConstraint(KubeModel):
    """A covalent bond between two atoms (CCD ligands and canonical residues only)."""

    atom1: AtomRef = Field(description="First atom.")
    atom2: AtomRef = Field(description="Second atom.")


class PocketConstraint(KubeModel):
    """A binding pocket: the binder chain lies within maxDistance of each contact."""

    binder: ChainId = Field(description="Chain id of the binder (a ligand, protein, DNA or RNA chain).")
    contacts: list[TokenRef] = Field(
        min_length=1, max_length=MAX_POCKET_CONTACTS, description="Residues or atoms forming the pocket."
    )
    max_distance: float = Field(default=6.0, ge=4.0, le=20.0, description=MAX_DISTANCE_DESCRIPTION)
    force: bool = Field(default=False, description=FORCE_DESCRIPTION)


class ContactConstraint(KubeModel):
    """Two residues or atoms within maxDistance of each other."""

    token1: TokenRef = Field(description="First residue or atom.")
    token2: TokenRef = Field(description="Second residue or atom.")
    max_distance: float = Field(default=6.0, ge=4.0, le=20.0, description=MAX_DISTANCE_DESCRIPTION)
    force: bool = Field(default=False, description=FORCE_DESCRIPTION)


class Constraint(KubeModel):
    """One constraint. Exactly one of bond, pocket, contact."""

    one_of = ("bond", "pocket", "contact")

    bond: BondConstraint | None = Field(default=None, description="A covalent bond.")
    pocket: PocketConstraint | None = Field(default=None, description="A binding pocket.")
    contact: ContactConstraint | None = Field(default=None, description="A residue/atom contact.")


# ---------------------------------------------------------------------------------------------- templates


class FileRef(KubeModel):
    """A file from a ConfigMap key or an S3 object. Exactly one of configMapKeyRef, s3."""

    one_of = ("config_map_key_ref", "s3")

    config_map_key_ref: KeyRef | None = Field(
        default=None, description="A ConfigMap key holding the file (up to ~1 MiB)."
    )
    s3: S3File | None = Field(default=None, description="An S3 object, downloaded when the run starts.")


class Template(KubeModel):
    """A structural template for protein chains. Exactly one of cif, pdb."""

    one_of = ("cif", "pdb")
    cel_rules = (
        CelRule(
            rule="!(has(self.chainIds) && has(self.templateIds)) || size(self.chainIds) == size(self.templateIds)",
            message="chainIds and templateIds must have the same length (chainIds[i] is templated by templateIds[i])",
        ),
        CelRule(
            rule="!(has(self.force) && self.force) || has(self.threshold)",
            message="force: true needs a threshold (Ångström the prediction may deviate from the template)",
        ),
    )

    cif: FileRef | None = Field(
        default=None, description="The template as an mmCIF file: exactly one of configMapKeyRef, s3."
    )
    pdb: FileRef | None = Field(
        default=None,
        description="The template as a PDB file (chains become A1, A2, B1...): exactly one of configMapKeyRef, s3.",
    )
    chain_ids: list[ChainId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDS,
        description="Protein chain ids to template; Boltz picks the best matches when omitted.",
    )
    template_ids: list[Annotated[str, StringConstraints(max_length=8)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_IDS,
        description="Chain ids in the template file, one for each of chainIds, to fix the mapping.",
    )
    force: bool = Field(default=False, description="true: a potential keeps the backbone near the template.")
    threshold: float | None = Field(
        default=None,
        ge=0,
        description="With force: distance in Ångström the prediction may deviate from the template.",
    )


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


class PairingStrategy(str, Enum):
    GREEDY = "greedy"
    COMPLETE = "complete"


class MsaServer(KubeModel):
    """The MMseqs2 server that computes MSAs for proteins without an MSA file."""

    url: Url | None = Field(
        default=None, description="Server URL. Boltz's default (the public ColabFold server) if omitted."
    )
    pairing_strategy: PairingStrategy = Field(
        default=PairingStrategy.GREEDY, description="How MSAs of different chains are paired: greedy or complete."
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with the keys username and password (basic auth), or apiKey (sent in apiKeyHeader).",
    )
    api_key_header: str | None = Field(
        default=None, max_length=256, description="HTTP header carrying the API key (e.g. X-API-Key)."
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


# ---------------------------------------------------------------------------------------------- status


class PredictionPhase(str, Enum):
    """Pending, WaitingForModelCache, Queued, Running, Succeeded or Failed."""

    PENDING = "Pending"
    WAITING_FOR_MODEL_CACHE = "WaitingForModelCache"
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PredictionConditionType(str, Enum):
    MODEL_CACHE_READY = "ModelCacheReady"
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


class BoltzPredictionStatus(KindStatus[PredictionPhase]):
    """Observed state of a BoltzPrediction, written by the operator."""

    conditions: list[Condition] = conditions_field("Conditions: ModelCacheReady, JobCreated, Complete, Failed.")
    job_name: str | None = Field(default=None, description="Name of the Job running the prediction.")
    attempts: int | None = Field(default=None, ge=0, description="Pods started for the run so far.")
    start_time: datetime | None = Field(default=None, description="When the Job started.")
    completion_time: datetime | None = Field(default=None, description="When the run succeeded or failed.")
    results: PredictionResults | None = Field(default=None, description="Results location and scores, once Succeeded.")


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
        "BoltzPrediction runs one Boltz-2 structure (and optionally affinity) prediction as a GPU Job and "
        "reports where the results are and their scores."
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

"""The operator <-> worker contract (package boltz_contract, imported by both boltz_operator and boltz_worker).

Operator -> worker: a ConfigMap mounted at CONFIG_DIR holding RUN_FILE (one of the *Run models below) and the
input files it names. Worker -> operator: the container's termination message, a compact RunSummary JSON of at
most TERMINATION_MESSAGE_LIMIT bytes, and the process exit code, which carries the error class so the Job's
podFailurePolicy can act on it without reading logs.

Both sides import this package; it must stay free of heavy dependencies (pydantic only).
"""

from __future__ import annotations

import json
from enum import Enum, IntEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .msa import ChainMsa, MsaRequest, MsaStoreTarget

CONTRACT_VERSION: Final = "v1"

# Paths inside worker pods.
CONFIG_DIR = "/etc/boltz-run"
RUN_FILE = "run.json"
MODELS_DIR = "/models"
BOLTZ2_CACHE_DIR: Final[str] = f"{MODELS_DIR}/boltz2"
BOLTZGEN_CACHE_DIR = f"{MODELS_DIR}/boltzgen"
MANIFEST_FILE = "manifest.json"
WORK_DIR = "/work"  # emptyDir: outputs, HOME and kernel caches (the root filesystem is read-only)
RESULTS_MOUNT = "/results"  # where a results PVC is mounted
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_MESSAGE_LIMIT = 4096  # bytes, enforced by the kubelet
RESULT_FILE = "result.json"  # written LAST under results_uri: its presence means the upload is complete
REPORT_FILE = "report.html"  # the run's self-contained HTML report, beside result.json (absent if it failed)

# Environment variables the worker reads (the operator sets them on the container).
ENV_WORK_DIR = "BOLTZ_WORK_DIR"  # overrides WORK_DIR
ENV_CPUS = "BOLTZ_WORKER_CPUS"  # overrides the CPU count read from the cgroup (boltz workers/threads)
ENV_MEMORY = "BOLTZ_WORKER_MEMORY_BYTES"  # overrides the memory limit read from the cgroup (boltzgen analysis pool)
ENV_MSA_API_KEY_VALUE = "MSA_API_KEY_VALUE"  # read by boltz itself when --api_key_header is passed
ENV_JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes on each pod of an Indexed Job

# BoltzGen campaigns: results layout under the campaign's results target.
SHARDS_DIR = "shards"  # <campaign results>/shards/<index>/ : one design shard's boltzgen output directory
SHARD_COMPLETE_MARKER = "_COMPLETE"  # written LAST under a shard: its presence means the shard is complete
FILTER_DIR = "final"  # <campaign results>/final/ : the filter Job's final_ranked_designs/ and metrics CSVs
# A shard may end with up to this fraction of its expected designs missing (rounded down: none below 20 designs):
# boltzgen's analysis skips a design it cannot featurize ("Failed obtaining valid features ... Skipping"), a rare
# loss a whole campaign can bear. More than that is what a killed analysis process leaves (design.check_shard_outputs).
SHORTFALL_TOLERANCE = 0.05
# Memory one boltzgen analysis process takes just to load (boltzgen 0.3.2, measured: DESIGN.md "Facts from the
# field"); its analysis step runs one process per CPU (the worker passes num_processes = the container's CPUs).
ANALYSIS_PROCESS_BYTES = 1.3e9


class ExitCode(IntEnum):
    """Process exit codes. The operator's podFailurePolicy fails the Job at once on FAIL_FAST codes."""

    OK = 0
    RETRYABLE = 1  # anything unclassified: counts against the retry budget
    INVALID_INPUT = 10  # the same input fails the same way on any node
    MODEL_CACHE_UNUSABLE = 11  # missing/corrupt weights: retrying cannot help until the cache is fixed
    GPU_OUT_OF_MEMORY = 12  # deterministic for the input and GPU type: ask for fewer samples or a larger GPU
    RESULTS_STORE_ERROR = 13  # upload failed (network, credentials): retried
    GPU_DEVICE_ERROR = 14  # CUDA/driver/Xid errors: retried, likely on another node
    CHECKSUM_MISMATCH = 15  # a source served bytes that do not match their checksum
    FILTER_FAILED = 16  # boltzgen merge/filtering raised on shard outputs already stored: a retry reads the same
    HOST_OUT_OF_MEMORY = 17  # a design shard lost designs to killed analysis processes: fails its index only
    MEMORY_LIMIT_EXCEEDED = 18  # the container's memory limit killed boltz (or the kubelet says OOMKilled)
    MSA_SERVER_UNAVAILABLE = 19  # the MSA server refused (rate limit, errors) past the bounded retries


FAIL_FAST_EXIT_CODES = (
    ExitCode.INVALID_INPUT,
    ExitCode.MODEL_CACHE_UNUSABLE,
    ExitCode.GPU_OUT_OF_MEMORY,
    ExitCode.CHECKSUM_MISMATCH,
    ExitCode.FILTER_FAILED,
    ExitCode.HOST_OUT_OF_MEMORY,
    ExitCode.MEMORY_LIMIT_EXCEEDED,
)


class ErrorClass(str, Enum):
    INVALID_INPUT = "InvalidInput"
    MODEL_CACHE_UNUSABLE = "ModelCacheUnusable"
    GPU_OUT_OF_MEMORY = "GPUOutOfMemory"
    RESULTS_STORE_ERROR = "ResultsStoreError"
    GPU_DEVICE_ERROR = "GPUDeviceError"
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    SOURCE_UNAVAILABLE = "SourceUnavailable"
    FILTER_FAILED = "FilterFailed"
    HOST_OUT_OF_MEMORY = "HostOutOfMemory"
    MEMORY_LIMIT_EXCEEDED = "MemoryLimitExceeded"
    MSA_SERVER_UNAVAILABLE = "MsaServerUnavailable"
    INTERNAL = "Internal"


EXIT_CODE_OF = {
    ErrorClass.INVALID_INPUT: ExitCode.INVALID_INPUT,
    ErrorClass.MODEL_CACHE_UNUSABLE: ExitCode.MODEL_CACHE_UNUSABLE,
    ErrorClass.GPU_OUT_OF_MEMORY: ExitCode.GPU_OUT_OF_MEMORY,
    ErrorClass.RESULTS_STORE_ERROR: ExitCode.RESULTS_STORE_ERROR,
    ErrorClass.GPU_DEVICE_ERROR: ExitCode.GPU_DEVICE_ERROR,
    ErrorClass.CHECKSUM_MISMATCH: ExitCode.CHECKSUM_MISMATCH,
    ErrorClass.FILTER_FAILED: ExitCode.FILTER_FAILED,
    ErrorClass.HOST_OUT_OF_MEMORY: ExitCode.HOST_OUT_OF_MEMORY,
    ErrorClass.MEMORY_LIMIT_EXCEEDED: ExitCode.MEMORY_LIMIT_EXCEEDED,
    ErrorClass.MSA_SERVER_UNAVAILABLE: ExitCode.MSA_SERVER_UNAVAILABLE,
    ErrorClass.SOURCE_UNAVAILABLE: ExitCode.RETRYABLE,
    ErrorClass.INTERNAL: ExitCode.RETRYABLE,
}
ERROR_CLASS_OF_EXIT_CODE = {int(code): cls for cls, code in EXIT_CODE_OF.items() if code != ExitCode.RETRYABLE}


MESSAGE_KEEP = 1024  # characters of a message a termination message keeps when it must cut one


def shorten_middle(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters by dropping its middle, never its ends: a worker's message starts
    with what failed and ends with the cause (boltz's exception text is its last line), so both ends are kept.

    Raises ValueError when limit < 20 (too short to keep both ends)."""
    if limit < 20:
        raise ValueError(f"limit {limit} is too short to keep both ends of a message")
    if len(text) <= limit:
        return text
    marker = " [...] "
    head = (limit - len(marker)) // 3  # the end usually says more (the exception), so it keeps two thirds
    tail = limit - len(marker) - head
    return text[:head] + marker + text[len(text) - tail :]


class WorkerError(Exception):
    """An error the worker reports to the operator: a class (-> exit code) and a one-line message for users."""

    def __init__(self, error_class: ErrorClass, message: str):
        super().__init__(message)
        self.error_class = error_class
        self.message = message

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODE_OF[self.error_class]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------- results target


class S3Target(_Model):
    """Where results go in S3. Credentials reach the pod as AWS_* env vars from a Secret, never in run.json."""

    bucket: str
    prefix: str  # no leading or trailing slash
    endpoint_url: str | None = None
    region: str | None = None


class ResultsTarget(_Model):
    """Exactly one of s3 / local_dir. `uri` is what status shows (s3://bucket/prefix or pvc://claim/path)."""

    uri: str
    s3: S3Target | None = None
    local_dir: str | None = None  # a directory under RESULTS_MOUNT (the results PVC)


# ---------------------------------------------------------------------------------------------- runs


class PredictOptions(_Model):
    """`boltz predict` options the operator passes through (names as boltz's CLI spells them)."""

    recycling_steps: int = 3
    sampling_steps: int = 200
    diffusion_samples: int = 1
    max_parallel_samples: int | None = None
    step_scale: float | None = None
    output_format: Literal["mmcif", "pdb"] = "mmcif"
    use_potentials: bool = False
    seed: int | None = None
    sampling_steps_affinity: int = 200
    diffusion_samples_affinity: int = 5
    affinity_mw_correction: bool = False
    use_msa_server: bool = False
    msa_server_url: str | None = None
    msa_pairing_strategy: Literal["greedy", "complete"] = "greedy"
    msa_api_key_header: str | None = None  # the key's value comes from a Secret as MSA_API_KEY_VALUE
    max_msa_seqs: int | None = None
    subsample_msa: bool = False
    num_subsampled_msa: int | None = None
    use_kernels: bool = True  # cuEquivariance kernels; off for GPUs/images without them


class S3Download(_Model):
    """An input file the worker fetches before running (MSAs and templates given as S3 URIs)."""

    uri: str  # s3://bucket/key
    dest: str  # absolute path the rendered Boltz YAML refers to
    endpoint_url: str | None = None
    region: str | None = None
    max_bytes: int | None = Field(default=None, ge=1)  # larger objects are refused before they are fetched
    # "": the pod's AWS_* credentials (the results store's); msa.ENV_MSA_STORE_PREFIX: the MSA store's.
    credentials_env_prefix: str = ""


class PredictRun(_Model):
    kind: Literal["predict"] = "predict"
    contract: Literal["v1"] = CONTRACT_VERSION
    # Boltz names its outputs after the input file's stem: input_file is "<record_id>.yaml".
    record_id: str
    input_file: str
    options: PredictOptions = PredictOptions()
    downloads: list[S3Download] = []
    cache_dir: str = BOLTZ2_CACHE_DIR
    results: ResultsTarget
    # The affinity binder's chain id, when affinity was asked for (the worker checks affinity_<id>.json).
    affinity_binder: str | None = None


class PrepareRun(_Model):
    """The CPU step before a prediction's GPU Job: boltz's own parsing and input processing on the rendered input
    (with the cache's molecules), the given MSA files checked, and the MSAs of `msa_request` looked up in the MSA
    store, fetched from the MSA server only on a miss. Reports ChainMsa per protein chain in its summary. The GPU
    Job is created only after it succeeded, with the store's files as the MSAs of the requested chains."""

    kind: Literal["prepare"] = "prepare"
    contract: Literal["v1"] = CONTRACT_VERSION
    record_id: str
    input_file: str  # the rendered input; chains of msa_request have no `msa` in it
    options: PredictOptions = PredictOptions()  # msa_server_url, msa_pairing_strategy, msa_api_key_header, ...
    downloads: list[S3Download] = []
    cache_dir: str = BOLTZ2_CACHE_DIR
    msa_request: MsaRequest | None = None  # None: every protein chain has an MSA (or empty)
    msa_store: MsaStoreTarget | None = None  # required with msa_request
    msa_server_attempts: int = Field(default=6, ge=1)  # submissions refused for a rate limit before giving up
    msa_server_backoff_seconds: float = Field(default=10.0, ge=0)  # first wait; doubles, with jitter, capped


class HuggingFaceSource(_Model):
    endpoint: str = "https://huggingface.co"  # a mirror serving the same /<repo>/resolve/<rev>/<file> paths
    # (and /datasets/<repo>/resolve/<rev>/<file> for files in dataset repos: the boltzgen bundle's mols.zip)
    token_env: str | None = None  # env var holding a token (from a Secret), if the mirror needs one


class S3Source(_Model):
    bucket: str
    prefix: str  # objects at <prefix>/<bundle>/<file>, the cache layout
    endpoint_url: str | None = None
    region: str | None = None


class PopulateSource(_Model):
    """Exactly one of huggingface / s3 / preloaded (verify what is already on the volume)."""

    huggingface: HuggingFaceSource | None = None
    s3: S3Source | None = None
    preloaded: bool = False


class PopulateRun(_Model):
    kind: Literal["populate"] = "populate"
    contract: Literal["v1"] = CONTRACT_VERSION
    models_dir: str = MODELS_DIR
    bundles: list[Literal["boltz2", "boltzgen"]] = ["boltz2"]  # model_catalog.BUNDLES
    source: PopulateSource = PopulateSource(huggingface=HuggingFaceSource())


# ---------------------------------------------------------------------------------------------- boltzgen runs

# `boltzgen run --protocol` choices and `--steps` choices, as boltzgen 0.3.2 spells them (cli/boltzgen.py).
BoltzGenProtocol = Literal[
    "protein-anything",
    "peptide-anything",
    "protein-small_molecule",
    "nanobody-anything",
    "antibody-anything",
    "protein-redesign",
]
BoltzGenStep = Literal[
    "design", "inverse_folding", "design_folding", "folding", "affinity", "analysis", "filtering"
]  # fmt: skip
# A design shard runs everything up to and including analysis; filtering runs once, over the merged shards.
DESIGN_SHARD_STEPS: tuple[str, ...] = ("design", "inverse_folding", "design_folding", "folding", "affinity", "analysis")


class BoltzGenModels(_Model):
    """Local paths of the boltzgen bundle (see model_catalog.BOLTZGEN). Given to boltzgen as paths, so it never
    reaches for the Hugging Face hub (its defaults are `huggingface:<repo>:<file>` references)."""

    design_checkpoints: list[str] = [
        f"{BOLTZGEN_CACHE_DIR}/boltzgen1_diverse.ckpt",
        f"{BOLTZGEN_CACHE_DIR}/boltzgen1_adherence.ckpt",
    ]
    inverse_fold_checkpoint: str = f"{BOLTZGEN_CACHE_DIR}/boltzgen1_ifold.ckpt"
    folding_checkpoint: str = f"{BOLTZGEN_CACHE_DIR}/boltz2_conf_final.ckpt"
    affinity_checkpoint: str = f"{BOLTZGEN_CACHE_DIR}/boltz2_aff.ckpt"
    moldir: str = f"{BOLTZGEN_CACHE_DIR}/mols.zip"  # boltzgen reads the zip itself: nothing to extract

    def paths(self) -> list[str]:
        return [*self.design_checkpoints, self.inverse_fold_checkpoint, self.folding_checkpoint,
                self.affinity_checkpoint, self.moldir]  # fmt: skip


class DesignOptions(_Model):
    """`boltzgen run` options a campaign may set (the allow-list; names as boltzgen's CLI spells them)."""

    steps: list[BoltzGenStep] | None = None  # None: DESIGN_SHARD_STEPS (boltzgen skips those its protocol lacks)
    diffusion_batch_size: int | None = Field(default=None, ge=1)
    step_scale: float | None = None
    noise_scale: float | None = None
    skip_inverse_folding: bool = False
    inverse_fold_num_sequences: int = Field(default=1, ge=1)
    inverse_fold_avoid: str | None = Field(default=None, pattern=r"^[A-Z]*$")  # one-letter codes, e.g. "KEC"
    use_kernels: Literal["auto", "true", "false"] = "auto"
    num_workers: int | None = Field(default=None, ge=1)  # DataLoader workers; boltzgen's default is 1
    reuse: bool = False  # `--reuse`: keep designs already in the work dir (a retried pod starts on an empty one)


class DesignRun(_Model):
    """One shard of a BoltzGenCampaign's Indexed Job: `boltzgen run` for num_designs designs, steps up to analysis.

    Its output directory goes to <results>/shards/<shard_index>/ with SHARD_COMPLETE_MARKER written last; a shard
    whose marker exists does no work (a re-run index, a retried pod after the upload)."""

    kind: Literal["design"] = "design"
    contract: Literal["v1"] = CONTRACT_VERSION
    spec_file: str  # the design spec's file name in CONFIG_DIR (files it refers to sit beside it)
    protocol: BoltzGenProtocol = "protein-anything"
    num_designs: int = Field(ge=1)  # designs of each shard...
    extra_design_shards: int = Field(default=0, ge=0)  # ...and shards 0..extra-1 make one more (numDesigns % shards)
    shard_index: int | None = Field(default=None, ge=0)  # None: from $JOB_COMPLETION_INDEX
    options: DesignOptions = DesignOptions()
    downloads: list[S3Download] = []  # target structures given as S3 URIs, fetched to where the spec names them
    cache_dir: str = BOLTZGEN_CACHE_DIR
    models: BoltzGenModels = BoltzGenModels()
    results: ResultsTarget  # the CAMPAIGN's results base; the shard's target is derived from it

    def designs_in_shard(self, index: int) -> int:
        """Backbones shard `index` is asked to design (boltzgen's --num_designs)."""
        return self.num_designs + (1 if index < self.extra_design_shards else 0)

    def designs_expected(self, index: int) -> int:
        """Rows shard `index` should end with in its aggregate metrics: every inverse-folded sequence of every
        backbone is a design of its own (`<id>_<k>`), so num_designs x inverse_fold_num_sequences unless skipped."""
        per_backbone = 1 if self.options.skip_inverse_folding else self.options.inverse_fold_num_sequences
        return self.designs_in_shard(index) * per_backbone


class FilterOptions(_Model):
    """`boltzgen run --steps filtering` options a campaign may set (names as boltzgen's CLI spells them)."""

    alpha: float | None = Field(default=None, ge=0.0, le=1.0)
    filter_biased: bool = True
    metrics_override: dict[str, float | None] | None = None  # metric -> inverse importance; None removes it
    additional_filters: list[str] | None = None  # "feature>threshold" / "feature<threshold"
    size_buckets: list[str] | None = None  # "min-max:count"
    refolding_rmsd_threshold: float | None = None


class FilterRun(_Model):
    """The campaign's filter Job: merge the complete shards, rank and select `budget` designs, upload them."""

    kind: Literal["filter"] = "filter"
    contract: Literal["v1"] = CONTRACT_VERSION
    spec_file: str  # the same spec the shards ran (boltzgen's `run` re-checks it before filtering)
    protocol: BoltzGenProtocol = "protein-anything"
    downloads: list[S3Download] = []  # as the shards: boltzgen reads the spec's files again
    num_shards: int = Field(ge=1)  # shards 0..num_shards-1 are looked for; those without a marker are skipped
    min_shards: int = Field(default=1, ge=1)  # fewer complete shards than this fails the run
    budget: int = Field(default=30, ge=1)
    skip_inverse_folding: bool = False  # as the shards ran: decides which designs directory is filtered
    options: FilterOptions = FilterOptions()
    top_designs: int = Field(default=10, ge=0)  # how many go into the termination message (then cut to fit)
    cache_dir: str = BOLTZGEN_CACHE_DIR
    models: BoltzGenModels = BoltzGenModels()
    results: ResultsTarget  # the campaign's results base: shards are read from it, FILTER_DIR/ is written


from .screen import RankedLigand, ScreenPrepareRun, ScreenRankRun, ScreenShardRun  # noqa: E402 (needs the above)

AnyRun = (
    PredictRun | PrepareRun | PopulateRun | DesignRun | FilterRun | ScreenPrepareRun | ScreenShardRun | ScreenRankRun
)
Run = Annotated[AnyRun, Field(discriminator="kind")]
RUN_ADAPTER: TypeAdapter[AnyRun] = TypeAdapter(Run)


# ---------------------------------------------------------------------------------------------- summaries


class FileSummary(_Model):
    path: str  # relative to the models dir or results URI
    bytes: int
    sha256: str | None = None


class TopDesign(_Model):
    """One selected design in a filter summary: boltzgen's final rank, id, designed sequence and key metrics."""

    rank: int
    id: str
    sequence: str | None = None
    metrics: dict[str, float] = {}


class RunSummary(_Model):
    """The termination message. Short keys are not worth the obscurity: the limit is ample for these fields."""

    ok: bool
    error_class: ErrorClass | None = None
    message: str | None = None
    results_uri: str | None = None
    # predict
    confidence_score: float | None = None
    ptm: float | None = None
    iptm: float | None = None
    complex_plddt: float | None = None
    affinity_pred_value: float | None = None
    affinity_probability_binary: float | None = None
    structures: list[str] = []  # file names under results_uri
    # prepare
    msas: list[ChainMsa] = []  # one per protein chain
    msa_server_calls: int | None = None  # MSA searches submitted to the server (0: every MSA given or reused)
    # populate
    files: list[FileSummary] = []
    total_bytes: int | None = None
    duration_seconds: float | None = None
    # design (a shard) and filter (a campaign)
    shard_index: int | None = None
    designs_completed: int | None = None  # design: rows in the shard's aggregate metrics; filter: designs merged
    designs_requested: int | None = None  # design: designs asked of the shard (num_designs x inverse-fold sequences)
    designs_duplicates_dropped: int | None = None  # filter: rows boltzgen's filter dropped as repeated sequences
    already_complete: bool = False  # design: the shard's marker existed, nothing was run
    shards_merged: list[int] = []
    designs_selected: int | None = None
    top_designs: list[TopDesign] = []  # best first; trimmed from the end to fit the termination message
    # screens: screen-prepare (total, failed, shards), screen-shard (its ligands done and failed), screen-rank
    ligands_total: int | None = None
    ligands_done: int | None = None
    ligands_failed: int | None = None
    shards: int | None = None
    top_ligands: list[RankedLigand] = []  # best first; trimmed from the end to fit the termination message
    report: str | None = None  # predict, filter: the HTML report's path relative to results_uri (REPORT_FILE)

    def to_termination_message(self) -> str:
        """Compact JSON within TERMINATION_MESSAGE_LIMIT: long messages are cut, then lists dropped."""
        summary = self
        text = summary._dump()
        if len(text.encode()) > TERMINATION_MESSAGE_LIMIT and summary.message:
            summary = summary.model_copy(update={"message": shorten_middle(summary.message, MESSAGE_KEEP)})
            text = summary._dump()
        for ranked in ("top_designs", "top_ligands"):
            while len(text.encode()) > TERMINATION_MESSAGE_LIMIT and getattr(summary, ranked):
                summary = summary.model_copy(update={ranked: getattr(summary, ranked)[:-1]})
                text = summary._dump()
        for field in ("structures", "files", "shards_merged"):
            if len(text.encode()) > TERMINATION_MESSAGE_LIMIT:
                summary = summary.model_copy(update={field: []})
                text = summary._dump()
        return text

    def _dump(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))

    @classmethod
    def from_termination_message(cls, text: str) -> RunSummary:
        return cls.model_validate_json(text)


# ---------------------------------------------------------------------------------------------- results manifest


class PredictionResult(_Model):
    """RESULT_FILE: what a finished prediction uploaded. Lets anyone (the operator after a restart, a user) recover
    the outcome from the results store alone. Read by other programs and versions: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    contract: str = CONTRACT_VERSION
    record_id: str
    results_uri: str
    files: list[FileSummary]  # every uploaded file except RESULT_FILE itself, paths relative to results_uri
    structures: list[str]  # structure files, best model (rank 0) first
    confidence: list[dict] = []  # boltz's confidence_<id>_model_<k>.json contents, index = model rank
    affinity: dict | None = None  # boltz's affinity_<id>.json contents
    boltz_version: str | None = None
    worker_version: str | None = None
    started_at: str  # ISO 8601, UTC
    finished_at: str
    timings: dict[str, float] = {}  # seconds: boltz, upload, report, total
    report: str | None = None  # REPORT_FILE when the HTML report was written, relative to results_uri

"""BoltzScreen: one target, a library of ligands, the model loaded once per GPU shard.

Three steps, each a worker command:
1. `screen-prepare` (CPU): the target checked by boltz's own processing and its MSAs looked up or fetched once
   (as a prediction's prepare), the library read (inline, a file in the run's config, or S3; .smi, .csv, .sdf) and
   checked (RDKit: a ligand it cannot parse is recorded as failed, never the screen), split into shards, and the
   slices written to the results store: <results>/LIBRARY_DIR/<i>.json (ShardSlice), and the ligands it refused
   (boltz would: RDKit cannot read the SMILES, boltz's standardization or atom limits) as LigandRow JSON with
   `error` in <results>/REJECTED_FILE (a list, `[]` when none). Reports ligands_total, ligands_failed and shards.
2. `screen-shard` (GPU, an Indexed Job: index i is shard i): ONE `boltz predict` over the slice (one input per
   ligand, the same target and MSA files), so the structure and affinity models load once per shard. Every
   `upload_interval_seconds` and at the end it uploads the rows done so far to <results>/SHARDS_DIR/<i>/TABLE_FILE
   (LigandRow per ligand, a ligand boltz refused or that ran out of GPU memory has `error`) and each ligand's
   outputs under <results>/SHARDS_DIR/<i>/<ligand id>/; SHARD_COMPLETE_MARKER last. A re-run shard reads the table
   and skips ligands already done.
3. `screen-rank` (CPU): merges the shard tables into RANKED_CSV and RANKED_PARQUET (ranked by
   affinity_probability_binary, then affinity_pred_value; structure-only screens by ligand ipTM), and reports the
   top K rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from . import BOLTZ2_CACHE_DIR, PredictOptions, ResultsTarget, S3Download  # defined before this module is imported
from .msa import MsaRequest, MsaStoreTarget

LIBRARY_DIR = "library"  # <screen results>/library/<shard>.json : a shard's ligands (ShardSlice)
REJECTED_FILE = "library/rejected.json"  # the ligands prepare refused: a JSON list of LigandRow with `error`
SHARDS_DIR = "shards"  # <screen results>/shards/<shard>/ : a shard's table and each ligand's outputs
TABLE_FILE = "ligands.csv"  # one shard's rows (LigandRow columns), uploaded as it goes
RANKED_CSV = "ranked.csv"  # every ligand of the screen, ranked (LigandRow columns and rank)
RANKED_PARQUET = "ranked.parquet"  # the same rows and columns as RANKED_CSV, typed (int64 rank, float64, string)
SHARD_COMPLETE_MARKER = "_COMPLETE"
MAX_LIGANDS = 100_000  # a screen's library at most; larger libraries are split into several screens
LIGAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a file name boltz can use as a record id
# The screened ligand's stand-in in the target (each shard input replaces it, found by its chain id). boltz makes
# ligands of one SMILES one entity with copies, so the stand-in must differ from every fixed ligand of the target.
PLACEHOLDER_CANDIDATES = ("CCO", "CCN", "CCC", "OCCO", "NCCN")


def placeholder_smiles(fixed_smiles: Iterable[str | None]) -> str:
    """The first of PLACEHOLDER_CANDIDATES that none of the target's ligands has (`fixed_smiles`, None for a CCD
    ligand). Raises ValueError when the target has all of them (five fixed ligands of two or three atoms)."""
    taken = set(fixed_smiles)
    for smiles in PLACEHOLDER_CANDIDATES:
        if smiles not in taken:
            return smiles
    raise ValueError(f"the target's ligands use every stand-in SMILES {PLACEHOLDER_CANDIDATES}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScreenLigand(_Model):
    """One library entry: an id (unique in the library) and exactly one of smiles / ccd."""

    id: str = Field(pattern=LIGAND_ID_PATTERN)
    smiles: str | None = None
    ccd: str | None = None


class LibraryFile(_Model):
    """A library file: `path` (in the run's config dir: a ConfigMap key) or `s3_uri` (fetched), in `format`."""

    format: Literal["smi", "csv", "sdf"]
    path: str | None = None
    s3_uri: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    id_column: str = "id"  # csv
    smiles_column: str = "smiles"  # csv
    id_property: str = "_Name"  # sdf: the molecule property holding the id (_Name: the title line)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)


class ShardSlice(_Model):
    """<results>/LIBRARY_DIR/<i>.json: the ligands of shard i, as prepare checked them."""

    shard_index: int = Field(ge=0)
    ligands: list[ScreenLigand]


class LigandRow(_Model):
    """One ligand's row in a shard table and in the ranked table (boltz's own names for the figures)."""

    id: str
    smiles: str | None = None
    ccd: str | None = None
    affinity_pred_value: float | None = None  # log10(IC50 / uM), lower binds tighter (boltz)
    affinity_probability_binary: float | None = None  # probability the ligand binds (boltz)
    iptm: float | None = None
    ligand_iptm: float | None = None
    complex_plddt: float | None = None
    confidence_score: float | None = None
    structure: str | None = None  # the best model's file, relative to the screen's results URI
    error: str | None = None  # why this ligand failed (boltz refused it, GPU memory, RDKit): no figures then


class ScreenPrepareRun(_Model):
    """Step 1 (CPU): check the target with boltz's own processing (target_file with one placeholder ligand of
    ligand_chain, so boltz sees the complex's shape), look up or fetch its MSAs once (msa_request, msa_store: as a
    prediction's PrepareRun), read and check the library, write the shard slices. Summary: ligands_total,
    ligands_failed (unparsable entries: their rows are written by rank, with the reason), shards, msas."""

    kind: Literal["screen-prepare"] = "screen-prepare"
    contract: Literal["v1"] = "v1"
    target_file: str  # the target's Boltz YAML in the config dir, the screened ligand a placeholder (a stand-in)
    ligand_chain: str
    affinity: bool = True
    options: PredictOptions = PredictOptions()
    downloads: list[S3Download] = []
    library_inline: list[ScreenLigand] | None = None
    library_file: LibraryFile | None = None
    max_ligands: int = Field(default=MAX_LIGANDS, ge=1)
    ligands_per_shard: int = Field(ge=1)
    cache_dir: str = BOLTZ2_CACHE_DIR
    msa_request: MsaRequest | None = None
    msa_store: MsaStoreTarget | None = None
    msa_server_attempts: int = Field(default=6, ge=1)
    msa_server_backoff_seconds: float = Field(default=10.0, ge=0)
    results: ResultsTarget  # the screen's results base


class ScreenShardRun(_Model):
    """Step 2 (GPU, Indexed Job): shard i's ligands (<results>/LIBRARY_DIR/<i>.json), each made an input from
    target_file with the ligand as ligand_chain (and the affinity property when affinity), ONE boltz predict."""

    kind: Literal["screen-shard"] = "screen-shard"
    contract: Literal["v1"] = "v1"
    target_file: str  # the target's Boltz YAML, MSAs as files (given, or the MSA store's), no screened ligand
    ligand_chain: str
    affinity: bool = True
    options: PredictOptions = PredictOptions()
    downloads: list[S3Download] = []
    shard_index: int | None = Field(default=None, ge=0)  # None: from $JOB_COMPLETION_INDEX
    upload_interval_seconds: int = Field(default=300, ge=10)
    cache_dir: str = BOLTZ2_CACHE_DIR
    results: ResultsTarget  # the screen's results base


class ScreenRankRun(_Model):
    """Step 3 (CPU): merge the shard tables (and prepare's failed rows) into RANKED_CSV and RANKED_PARQUET; top_k
    into the summary."""

    kind: Literal["screen-rank"] = "screen-rank"
    contract: Literal["v1"] = "v1"
    num_shards: int = Field(ge=1)
    affinity: bool = True
    top_k: int = Field(default=20, ge=0)
    results: ResultsTarget


class RankedLigand(_Model):
    """A top-K row in the rank summary (and in status.results.topLigands)."""

    rank: int
    id: str
    smiles: str | None = None
    affinity_pred_value: float | None = None
    affinity_probability_binary: float | None = None
    iptm: float | None = None
    ligand_iptm: float | None = None
    confidence_score: float | None = None

"""`boltz-worker screen-prepare`: everything about a screen that needs no GPU, before its shards exist.

1. the library read, capped, its ids checked, and each ligand checked by boltz's own rules (library, chemistry):
   ligands boltz would refuse become rejected rows, the rest are screened;
2. the target (with the placeholder ligand, so boltz sees the complex's shape and, for affinity, the binder) checked
   by a prediction's prepare (boltz_worker.prepare): boltz's parsing and input processing, the given MSA files, and
   the MSAs of msa_request looked up in the MSA store or fetched ONCE from the server and stored there;
3. the slices (ligands_per_shard each) and the rejected rows written to the results store (slices.py).
Returns RunSummary(ok, results_uri, ligands_total, ligands_failed, shards, msas, msa_server_calls, duration_seconds).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import yaml

from boltz_contract import ENV_WORK_DIR, WORK_DIR, ErrorClass, PrepareRun, RunSummary, WorkerError
from boltz_contract.screen import ScreenPrepareRun
from boltz_worker.boltz_runs.predict import load_input
from boltz_worker.prepare.msa_request import with_msas
from boltz_worker.prepare.prepare import prepare
from boltz_worker.results.results_store import open_results_store
from boltz_worker.screen_runs.library import read_library
from boltz_worker.screen_runs.slices import slice_ligands, write_slices
from boltz_worker.screen_runs.target import with_placeholder

log = logging.getLogger(__name__)

TARGET_RECORD = "target"  # the record id prepare checks the target under
SHOWN_REASONS = 3


def screen_prepare(run: ScreenPrepareRun, config_dir: Path) -> RunSummary:
    """Run screen-prepare for `run`, whose target and library files sit in `config_dir`.

    Raises WorkerError: INVALID_INPUT (the target or the library; every ligand refused), MSA_SERVER_UNAVAILABLE,
    RESULTS_STORE_ERROR (the MSA store or the results store), MEMORY_LIMIT_EXCEEDED, INTERNAL (as prepare)."""
    started = time.monotonic()
    store = open_results_store(run.results)  # a malformed target fails before any work
    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR))
    library = read_library(run, config_dir, work / "screen-library")
    log.info("library: %d ligands, %d refused", library.total, len(library.rejected))
    if not library.ligands:
        reasons = "; ".join(f"{r.id}: {r.error}" for r in library.rejected[:SHOWN_REASONS])
        raise WorkerError(ErrorClass.INVALID_INPUT, f"none of the library's {library.total} ligands can be screened "
                          f"({reasons})")  # fmt: skip

    target_run, target_dir = stage_target(run, config_dir, work)
    checked = prepare(target_run, target_dir)

    slices = slice_ligands(library.ligands, run.ligands_per_shard)
    write_slices(store, slices, library.rejected)
    log.info("%d shard slices of at most %d ligands written to %s", len(slices), run.ligands_per_shard,
             run.results.uri)  # fmt: skip
    return RunSummary(
        ok=True,
        results_uri=run.results.uri,
        ligands_total=library.total,
        ligands_failed=len(library.rejected),
        shards=len(slices),
        msas=checked.msas,
        msa_server_calls=checked.msa_server_calls,
        duration_seconds=round(time.monotonic() - started, 1),
    )


def stage_target(run: ScreenPrepareRun, config_dir: Path, work: Path) -> tuple[PrepareRun, Path]:
    """The PrepareRun that checks the target, and the directory its input sits in: the config dir itself when the
    target already has its placeholder (as the operator renders it), else a copy with the placeholder added (and
    relative file paths made absolute against the config dir)."""
    doc = load_input(config_dir / run.target_file)
    staged = with_placeholder(doc, run.ligand_chain, run.affinity)
    input_file, directory = run.target_file, config_dir
    if staged != doc:
        directory = work / "screen-target"
        directory.mkdir(parents=True, exist_ok=True)
        input_file = f"{TARGET_RECORD}.yaml"
        (directory / input_file).write_text(yaml.safe_dump(with_msas(staged, {}, config_dir), sort_keys=False))
    target_run = PrepareRun(
        record_id=TARGET_RECORD, input_file=input_file, options=run.options, downloads=run.downloads,
        cache_dir=run.cache_dir, msa_request=run.msa_request, msa_store=run.msa_store,
        msa_server_attempts=run.msa_server_attempts, msa_server_backoff_seconds=run.msa_server_backoff_seconds,
    )  # fmt: skip
    return target_run, directory

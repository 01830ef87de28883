"""`boltz-worker screen-shard`: one GPU shard of a screen (index i of an Indexed Job): ONE `boltz predict` over the
directory of its ligands' inputs, so boltz loads the structure model (and the affinity model) once for all of them.

Does nothing when <results>/shards/<i>/SHARD_COMPLETE_MARKER exists. Else reads its slice, skips the ligands its table
already settles and restores the structures uploaded before (progress.py), writes one input per remaining ligand
(target.ligand_input), runs boltz with a timer uploading progress every upload_interval_seconds, then gives every
ligand boltz left without outputs a failed row with boltz's reason:
- "Failed to process <input>. Skipping. Error: <e>." (boltz/main.py process_input: it refused the input);
- "<Tokenizer|Cropper|Featurizer> failed on <record> with error <e>. Skipping." (boltz/data/module/inferencev2.py);
- "| WARNING: ran out of memory, skipping batch" (boltz/model/models/boltz2.py predict_step; it names no record:
  the ligands left without outputs in that step ran out of GPU memory).
boltz's affinity step reads pre_affinity_<record>.npz of every affinity record outside any try (inferencev2.py
load_input): one ligand without a structure makes the whole step fail (FileNotFoundError). Then boltz runs again,
without that ligand's input and processed record: it predicts the affinity of the others only, the structures
being there. The table and SHARD_COMPLETE_MARKER are uploaded last.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import yaml

from boltz_contract import (
    ENV_WORK_DIR,
    SHARD_COMPLETE_MARKER,
    WORK_DIR,
    ErrorClass,
    RunSummary,
    WorkerError,
)
from boltz_contract.boltz_input import local_paths, missing_msa_chains
from boltz_contract.screen import SHARDS_DIR, TABLE_FILE, ScreenShardRun
from boltz_worker.boltz_runs.boltz_command import (
    BoltzResult,
    accelerator,
    boltz_executable,
    build_boltz_argv,
    child_env,
    container_cpus,
    run_boltz,
)
from boltz_worker.boltz_runs.predict import check_model_cache, load_input
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader, sub_target
from boltz_worker.boltzgen_runs.design import shard_index
from boltz_worker.fileutil import utc_now
from boltz_worker.prepare.msa_request import with_msas
from boltz_worker.results.results_store import open_results_store
from boltz_worker.results.s3_inputs import fetch_downloads
from boltz_worker.screen_runs.progress import ShardProgress, restore, settled_rows
from boltz_worker.screen_runs.shard_outcomes import (
    StepWatch,
    crash_error,
    failure_reasons,
    reached_affinity,
    unexplained_reason,
)
from boltz_worker.screen_runs.slices import read_slice
from boltz_worker.screen_runs.table import rows_from_csv
from boltz_worker.screen_runs.target import ligand_chain_index, ligand_input, with_placeholder

log = logging.getLogger(__name__)

INPUTS = "inputs"  # boltz names its output directory after the input directory: <out>/boltz_results_inputs/
MAX_ROUNDS = 3  # boltz runs: the first, then (rarely) ones for the affinity step only
POLL_SECONDS = 5.0  # how often the timer thread asks whether an upload is due


def screen_shard(run: ScreenShardRun, config_dir: Path) -> RunSummary:
    """Run shard `run.shard_index` (else $JOB_COMPLETION_INDEX) of a screen; see the module's docstring.

    Raises WorkerError: INVALID_INPUT (the target), MODEL_CACHE_UNUSABLE, RESULTS_STORE_ERROR, GPU_OUT_OF_MEMORY (no
    ligand of the shard could run), MEMORY_LIMIT_EXCEEDED, GPU_DEVICE_ERROR, INTERNAL (boltz crashed otherwise)."""
    started, started_at = time.monotonic(), utc_now()
    index = shard_index(run)
    rel = f"{SHARDS_DIR}/{index}"
    target = sub_target(run.results, rel)
    reader = StoreReader(run.results)
    if reader.exists(f"{rel}/{SHARD_COMPLETE_MARKER}"):
        rows = rows_from_csv(reader.read_bytes(f"{rel}/{TABLE_FILE}"))
        log.info("shard %d is already complete (%s): nothing to do", index, target.uri)
        return _summary(target.uri, index, rows, already_complete=True)
    ligands = [x.model_dump() for x in read_slice(reader, index).ligands]
    settled = settled_rows(reader, rel, run.affinity)
    cache_dir = Path(run.cache_dir)
    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR)) / f"screen-shard-{index}"
    shutil.rmtree(work, ignore_errors=True)  # a retried container: the store, not the emptyDir, says what is done
    out = work / "out" / f"boltz_results_{INPUTS}"
    doc = with_placeholder(load_input(config_dir / run.target_file), run.ligand_chain, run.affinity)
    progress = ShardProgress(
        open_results_store(target), out / "predictions", ligands, settled, affinity=run.affinity,
        diffusion_samples=run.options.diffusion_samples, suffix="pdb" if run.options.output_format == "pdb" else "cif",
        structure_prefix=rel, ligand_index=ligand_chain_index(doc, run.ligand_chain),
        interval=run.upload_interval_seconds,
    )  # fmt: skip
    log.info("shard %d: %d ligands, %d settled by an earlier run", index, len(ligands), len(settled))
    seconds = 0.0
    if progress.pending():
        check_model_cache(cache_dir)
        fetch_downloads(run.downloads)
        doc = with_msas(doc, {}, config_dir)  # relative MSA and template paths made absolute
        _check_files(doc)
        restored = restore(reader, rel, progress)
        if restored:
            log.info("shard %d: the structures of %d ligands restored from the store", index, len(restored))
        seconds = _predict(run, doc, progress, work, cache_dir)
    progress.sync(final=True)
    rows = progress.table_rows()
    marker = {"shard_index": index, "ligands": len(ligands), "done": sum(not r.error for r in rows),
              "failed": sum(bool(r.error) for r in rows), "started_at": started_at, "finished_at": utc_now(),
              "timings": {"boltz": round(seconds, 1), "total": round(time.monotonic() - started, 1)}}  # fmt: skip
    progress.store.put_bytes(SHARD_COMPLETE_MARKER, json.dumps(marker, indent=2).encode() + b"\n")  # LAST
    return _summary(target.uri, index, rows, already_complete=False, duration=time.monotonic() - started)


def _predict(run: ScreenShardRun, doc: dict, progress: ShardProgress, work: Path, cache_dir: Path) -> float:
    """boltz over the pending ligands, in rounds (see the module's docstring); returns boltz's seconds."""
    inputs, out_dir = work / INPUTS, work / "out"
    inputs.mkdir(parents=True)
    for ligand in progress.pending():
        (inputs / f"{ligand['id']}.yaml").write_text(yaml.safe_dump(ligand_input(doc, run.ligand_chain, ligand)))
    options = run.options.model_copy(update={"use_msa_server": False})  # every MSA is a file: never the server
    argv = build_boltz_argv(boltz_executable(), inputs, out_dir, cache_dir, options, container_cpus(), accelerator())
    seconds, attempted = 0.0, {x["id"] for x in progress.pending()}
    for round_number in range(1, MAX_ROUNDS + 1):
        watch = StepWatch(progress)
        result = _run_with_uploads(argv, work, cache_dir, watch)
        seconds += result.seconds
        progress.sync(final=True)
        reasons = failure_reasons(result) | watch.refused
        no_structure = [x for x in progress.pending() if not (progress.predictions / x["id"]).is_dir()]
        if result.returncode == 0:
            for ligand in no_structure:
                progress.fail(ligand, reasons.get(ligand["id"]) or unexplained_reason(result, "structure"))
            for ligand in progress.pending():  # a structure, no affinity
                progress.fail(ligand, reasons.get(ligand["id"]) or unexplained_reason(result, "affinity"))
            break
        if not (run.affinity and no_structure and reached_affinity(result) and round_number < MAX_ROUNDS):
            raise crash_error(result)  # the ligands it did not reach stay pending: a re-run predicts them
        log.warning("boltz's affinity step failed on ligands without a structure (%s): running it again without them",
                    ", ".join(x["id"] for x in no_structure))  # fmt: skip
        for ligand in no_structure:
            progress.fail(ligand, reasons.get(ligand["id"]) or unexplained_reason(result, "structure"))
            (inputs / f"{ligand['id']}.yaml").unlink(missing_ok=True)
            (out_dir / f"boltz_results_{INPUTS}" / "processed" / "records" / f"{ligand['id']}.json").unlink(
                missing_ok=True
            )
    outcomes = [progress.rows[i] for i in attempted if i in progress.rows]
    if outcomes and all(r.error and "GPU memory" in r.error for r in outcomes):  # the shard cannot run as asked
        progress.sync(final=True)
        raise WorkerError(ErrorClass.GPU_OUT_OF_MEMORY, f"every ligand of the shard ({len(outcomes)}) ran out of GPU "
                          "memory: try fewer options.diffusionSamples (or a smaller maxParallelSamples), fewer "
                          "affinity samples, or a larger GPU")  # fmt: skip
    return seconds


def _run_with_uploads(argv: list[str], work: Path, cache_dir: Path, watch: StepWatch) -> BoltzResult:
    progress = watch.progress
    stop = threading.Event()

    def uploads() -> None:
        while not stop.wait(min(POLL_SECONDS, progress.interval)):
            try:
                progress.tick()
            except WorkerError as e:  # the next tick tries again; the final sync raises
                log.warning("progress upload failed: %s", e.message)

    timer = threading.Thread(target=uploads, name="screen-uploads", daemon=True)
    timer.start()
    try:
        return run_boltz(argv, cwd=work, env=child_env(cache_dir), echo=watch)
    finally:
        watch.finish()
        stop.set()
        timer.join()


def _check_files(doc: dict) -> None:
    """Every protein has an MSA file (or `empty`: a shard never calls the MSA server) and every file exists; else
    WorkerError(INVALID_INPUT): boltz would refuse every ligand of the shard for the same reason."""
    missing = missing_msa_chains(doc)
    if missing:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"protein chains {', '.join(missing)} of the target have no msa: "
                          "a shard never calls the MSA server, its target names MSA files (the MSA store's) or "
                          "'empty'")  # fmt: skip
    for path in local_paths(doc):
        if not Path(path).is_file():
            raise WorkerError(ErrorClass.INVALID_INPUT, f"the target refers to {path}, which is neither in the run's "
                              "files nor among its downloads")  # fmt: skip


def _summary(uri: str, index: int, rows, already_complete: bool, duration: float | None = None) -> RunSummary:
    return RunSummary(
        ok=True, results_uri=uri, shard_index=index, ligands_done=sum(not r.error for r in rows),
        ligands_failed=sum(bool(r.error) for r in rows), already_complete=already_complete,
        duration_seconds=round(duration, 1) if duration is not None else None,
    )  # fmt: skip

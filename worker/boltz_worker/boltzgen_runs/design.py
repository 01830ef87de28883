"""`boltz-worker design`: one shard of a BoltzGen campaign (one index of an Indexed Job).

Skips at once when the shard's marker exists (a re-run index does no work); else checks the spec and the model
cache, runs `boltzgen run` up to analysis, checks its outputs, uploads the output directory to
<campaign results>/shards/<index>/ and writes SHARD_COMPLETE_MARKER LAST.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from pathlib import Path

from boltz_contract import (
    ANALYSIS_PROCESS_BYTES,
    ENV_JOB_COMPLETION_INDEX,
    ENV_WORK_DIR,
    SHARD_COMPLETE_MARKER,
    SHARDS_DIR,
    SHORTFALL_TOLERANCE,
    WORK_DIR,
    BoltzGenModels,
    DesignRun,
    ErrorClass,
    RunSummary,
    ScreenShardRun,
    WorkerError,
)
from boltz_worker.boltz_runs.boltz_command import container_cpus, container_memory_bytes
from boltz_worker.boltzgen_runs.boltzgen_command import (
    analysis_processes,
    boltzgen_executable,
    build_design_argv,
    failure,
    run_boltzgen,
)
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader, sub_target
from boltz_worker.fileutil import utc_now
from boltz_worker.model_cache.model_catalog import unreadable, unreadable_hint
from boltz_worker.results.results_store import open_results_store
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

METRICS_CSV = "aggregate_metrics_analyze.csv"  # written by boltzgen's analysis step into the designs directory
POOL_BROKEN = "POOL BROKEN"  # what boltzgen's Analyze.run_parallel prints when it restarts a broken pool
INVERSE_FOLDED_DIR = "intermediate_designs_inverse_folded"
DESIGNS_DIR = "intermediate_designs"


def shard_index(run: DesignRun | ScreenShardRun, environ=os.environ) -> int:
    if run.shard_index is not None:
        return run.shard_index
    value = environ.get(ENV_JOB_COMPLETION_INDEX, "").strip()
    try:
        index = int(value)
    except ValueError:
        raise WorkerError(
            ErrorClass.INVALID_INPUT,
            f"no shard_index in the run and ${ENV_JOB_COMPLETION_INDEX} is {value!r}: not an Indexed Job's pod?",
        ) from None
    if index < 0:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"${ENV_JOB_COMPLETION_INDEX} is negative: {index}")
    return index


def shard_rel(index: int) -> str:
    return f"{SHARDS_DIR}/{index}"


def design(run: DesignRun, config_dir: Path) -> RunSummary:
    started, started_at = time.monotonic(), utc_now()
    index = shard_index(run)
    target = sub_target(run.results, shard_rel(index))
    reader = StoreReader(run.results)
    marker = f"{shard_rel(index)}/{SHARD_COMPLETE_MARKER}"
    if reader.exists(marker):
        log.info("shard %d is already complete (%s exists): nothing to do", index, target.uri)
        return RunSummary(
            ok=True, results_uri=target.uri, shard_index=index, already_complete=True,
            designs_completed=_designs_in_marker(reader, marker),
            designs_requested=run.designs_expected(index) if _analysed(run) else None,
        )  # fmt: skip
    spec = config_dir / run.spec_file
    check_spec(spec)
    fetch_downloads(run.downloads)
    check_models(run.models)

    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR))
    out_dir = work / "boltzgen" / f"shard-{index}"
    if out_dir.exists() and not run.options.reuse:
        shutil.rmtree(out_dir)  # a retried container in the same pod: start clean unless asked to reuse
    out_dir.mkdir(parents=True, exist_ok=True)
    cpus, memory = container_cpus(), container_memory_bytes()
    processes = analysis_processes(cpus, memory)
    if processes < cpus:
        log.warning(
            "%d analysis processes, not one per CPU (%d): %d bytes of memory hold %d at about %.1f GB each",
            processes,
            cpus,
            memory,
            processes,
            ANALYSIS_PROCESS_BYTES / 1e9,
        )
    argv = build_design_argv(
        boltzgen_executable(),
        spec,
        out_dir,
        run.protocol,
        run.designs_in_shard(index),
        run.options,
        run.models,
        processes,
    )
    result = run_boltzgen(argv, cwd=work)
    error = failure(result, f"boltzgen run (shard {index})")
    if error:
        raise error
    # Counted among the notable lines (kept wherever they appeared; lines() repeats the tail's).
    pool_breaks = sum(1 for line in result.log.notable if POOL_BROKEN in line)
    designs = check_shard_outputs(out_dir, run, index, analysis_processes=processes, pool_breaks=pool_breaks)
    expected = run.designs_expected(index) if _analysed(run) else None

    upload_started = time.monotonic()
    store = open_results_store(target)
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    for path in files:
        store.put_file(path.relative_to(out_dir).as_posix(), path)
    marker_doc = {
        "shard_index": index,
        "designs": designs,
        "designs_requested": expected,
        "files": len(files),
        "num_designs": run.designs_in_shard(index),
        "protocol": run.protocol,
        "started_at": started_at,
        "finished_at": utc_now(),
        "timings": {
            "boltzgen": round(result.seconds, 1),
            "upload": round(time.monotonic() - upload_started, 1),
            "total": round(time.monotonic() - started, 1),
        },
    }
    store.put_bytes(SHARD_COMPLETE_MARKER, json.dumps(marker_doc, indent=2).encode() + b"\n")  # LAST
    log.info("shard %d: %d designs (of %s expected) at %s", index, designs, expected, target.uri)
    return RunSummary(
        ok=True, results_uri=target.uri, shard_index=index, designs_completed=designs, designs_requested=expected
    )


def check_spec(spec: Path) -> None:
    if not spec.is_file():
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the design spec {spec.name} is not among the run's files")
    import yaml  # light, and only here

    try:
        doc = yaml.safe_load(spec.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the design spec {spec.name} is not valid YAML: {e}") from e
    if not isinstance(doc, dict) or "entities" not in doc:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the design spec {spec.name} has no 'entities'")


def check_models(models: BoltzGenModels) -> None:
    """Every path boltzgen is given exists, is not empty, and is readable by this process; else ModelCacheUnusable
    (the Job fails at once: every retry would find the same cache)."""
    missing, unreadable_paths = [], []
    for p in models.paths():
        try:
            if not Path(p).is_file() or Path(p).stat().st_size == 0:
                missing.append(p)
            elif not os.access(p, os.R_OK):
                unreadable_paths.append(unreadable(p))
        except PermissionError:  # a directory on the way that this uid may not search
            unreadable_paths.append(unreadable(p))
    problems = ([f"missing or empty: {', '.join(missing)}"] if missing else []) + unreadable_paths
    if problems:
        raise WorkerError(
            ErrorClass.MODEL_CACHE_UNUSABLE,
            f"boltzgen model cache is unusable ({'; '.join(problems)}): "
            "is its BoltzModelCache Ready and mounted there?" + unreadable_hint(problems),
        )


def designs_dir(out_dir: Path, skip_inverse_folding: bool) -> Path:
    return out_dir / (DESIGNS_DIR if skip_inverse_folding else INVERSE_FOLDED_DIR)


def _analysed(run: DesignRun) -> bool:
    return run.options.steps is None or "analysis" in run.options.steps


def allowed_shortfall(expected: int) -> int:
    """Designs a shard may be missing and still count as complete: SHORTFALL_TOLERANCE of `expected`, rounded down."""
    return int(expected * SHORTFALL_TOLERANCE)


def check_shard_outputs(
    out_dir: Path, run: DesignRun, index: int = 0, analysis_processes: int | None = None, pool_breaks: int = 0
) -> int:
    """The number of designs (rows of the aggregate metrics) the shard produced.

    Raises WorkerError: INTERNAL when boltzgen exited 0 without them; HOST_OUT_OF_MEMORY when more than
    allowed_shortfall(expected) are missing (expected: run.designs_expected(index)). boltzgen exits 0 then: its
    analysis step restarts its process pool when a worker is killed (the kernel's OOM killer, in a pod at its memory
    limit) and counts the task in flight as done, so its design is lost. `analysis_processes` (the pool size, our
    CPUs) and `pool_breaks` (POOL_BROKEN lines in boltzgen's output) only make the message precise.
    """
    steps = run.options.steps
    directory = designs_dir(out_dir, run.options.skip_inverse_folding)
    if steps is None or "analysis" in steps:
        rows = count_csv_rows(directory / METRICS_CSV)
        if rows is None:
            raise WorkerError(ErrorClass.INTERNAL, f"boltzgen exited 0 but wrote no {directory.name}/{METRICS_CSV}")
        if rows == 0:
            raise WorkerError(ErrorClass.INTERNAL, f"boltzgen's {directory.name}/{METRICS_CSV} lists no designs")
        expected = run.designs_expected(index)
        if expected - rows > allowed_shortfall(expected):
            raise WorkerError(
                ErrorClass.HOST_OUT_OF_MEMORY,
                _shortfall_message(index, rows, expected, analysis_processes, pool_breaks),
            )
        return rows
    cifs = [p for p in (out_dir / DESIGNS_DIR).glob("*.cif") if not p.name.endswith("_native.cif")]
    if not cifs:
        raise WorkerError(ErrorClass.INTERNAL, f"boltzgen exited 0 but wrote no designs under {DESIGNS_DIR}/")
    return len(cifs)


def _shortfall_message(index: int, rows: int, expected: int, processes: int | None, pool_breaks: int) -> str:
    why = (
        f"boltzgen's analysis restarted its process pool {pool_breaks} time(s): a worker process was killed, as the "
        "kernel does at the pod's memory limit, and its designs were dropped"
        if pool_breaks
        else "boltzgen exited 0, as it does when an analysis worker process is killed for memory"
    )
    pool = f" x {processes} processes" if processes else " per process"
    return (
        f"shard {index} produced {rows} of {expected} designs (at most {allowed_shortfall(expected)} may be "
        f"missing, {SHORTFALL_TOLERANCE:.0%}): {why}. Each analysis process needs about "
        f"{ANALYSIS_PROCESS_BYTES / 1e9:.1f} GB{pool}: raise resources.memory, or lower resources.cpu"
    )


def count_csv_rows(path: Path) -> int | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def _designs_in_marker(reader: StoreReader, marker: str) -> int | None:
    """The design count the marker recorded (best effort: the marker's presence is what counts)."""
    try:
        return json.loads(reader.read_bytes(marker)).get("designs")
    except (WorkerError, ValueError, AttributeError):
        return None

"""`boltz-worker filter`: the BoltzGen campaign's last Job.

Downloads, of each complete shard (those with SHARD_COMPLETE_MARKER), only what `boltzgen merge` and filtering read
(shard_files_to_download), into directories with distinct names (boltzgen's merge prefixes every design id with its
source directory's name), `boltzgen merge`s them, runs `boltzgen run <spec> --steps filtering` on the merged
directory, uploads final_ranked_designs/ and the merged metrics CSVs to <campaign results>/final/, writes result.json
there LAST, and reports the top designs and how many designs boltzgen's filter dropped as repeated sequences.
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
    ENV_WORK_DIR,
    FILTER_DIR,
    REPORT_FILE,
    RESULT_FILE,
    SHARD_COMPLETE_MARKER,
    WORK_DIR,
    ErrorClass,
    FilterRun,
    RunSummary,
    TopDesign,
    WorkerError,
)
from boltz_worker.boltzgen_runs.boltzgen_command import (
    boltzgen_executable,
    build_filter_argv,
    build_merge_argv,
    filter_failure,
    run_boltzgen,
)
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader, sub_target
from boltz_worker.boltzgen_runs.design import (
    DESIGNS_DIR,
    INVERSE_FOLDED_DIR,
    METRICS_CSV,
    check_models,
    check_spec,
    count_csv_rows,
    designs_dir,
    shard_rel,
)
from boltz_worker.fileutil import utc_now
from boltz_worker.results.results_store import ResultsStore, open_results_store
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

FINAL_RANKED_DIR = "final_ranked_designs"  # boltzgen's filter output under its --output
ALL_METRICS_CSV = "all_designs_metrics.csv"
PER_TARGET_CSV = "per_target_metrics_analyze.csv"
SEQUENCES_PICKLE = "ca_coords_sequences.pkl.gz"  # id -> sequence: filtering's diversity selection needs it
REFOLD_DIR = "refold_cif"  # boltzgen const.refold_cif_dirname: filtering copies the selected designs' refolded cifs
MERGED_CSVS = (METRICS_CSV, PER_TARGET_CSV)
# Metrics reported per top design, first present of each group (boltzgen's filter falls back the same way).
KEY_METRICS = (
    ("design_to_target_iptm", "design_iptm"),
    ("design_ptm",),
    ("min_design_to_target_pae", "min_interaction_pae"),
    ("filter_rmsd",),
    ("affinity_probability_binary1",),
    ("quality_score",),
)


def selected_metrics_csv(budget: int) -> str:
    return f"final_designs_metrics_{budget}.csv"


def shard_dir_name(index: int) -> str:
    return f"shard-{index:05d}"  # distinct and stable: merged ids read `shard-00003_<id>`


def shard_files_to_download(listing: list[str], metrics_csv: Path, skip_inverse_folding: bool) -> list[str]:
    """Of a shard's files (`listing`, relative to the shard), those `boltzgen merge` and filtering read.

    boltzgen 0.3.2 (cli/boltzgen.py merge_command, task/filter/filter.py): filtering reads one designs directory,
    intermediate_designs_inverse_folded/ (intermediate_designs/ with --skip_inverse_folding): its aggregate metrics,
    ca_coords_sequences.pkl.gz, and for the designs it selects `<file_name>` and refold_cif/<file_name>. The merge
    must find `<file_name>` of every metrics row (the rest it copies only when present: .npz, _native.cif,
    refold_design_cif/) and carries per_target_metrics_analyze.csv along. So: those three tables and, for each row of
    `metrics_csv` (that directory's aggregate metrics, already downloaded), its structure and refolded structure.
    The other directory is left out too: with inverse folding, the merge would otherwise look in intermediate_designs/
    for the inverse-folded ids (`<id>_<k>.cif`) and fail when inverseFoldNumSequences > 1.
    """
    directory = DESIGNS_DIR if skip_inverse_folding else INVERSE_FOLDED_DIR
    present = set(listing)
    wanted = [f"{directory}/{name}" for name in (METRICS_CSV, PER_TARGET_CSV, SEQUENCES_PICKLE)]
    for row in read_csv(metrics_csv):
        name = row.get("file_name") or ""
        wanted += [f"{directory}/{name}", f"{directory}/{REFOLD_DIR}/{name}"]
    # A file the metrics name but the shard lacks is left to the merge, whose error names it (FilterFailed).
    return [rel for rel in dict.fromkeys(wanted) if rel in present]


def download_shard(reader: StoreReader, index: int, dest: Path, skip_inverse_folding: bool) -> tuple[int, int]:
    """Download what merge and filtering read of shard `index` into dest; returns (files, bytes)."""
    directory = DESIGNS_DIR if skip_inverse_folding else INVERSE_FOLDED_DIR
    listing = reader.list(shard_rel(index))
    metrics = f"{directory}/{METRICS_CSV}"
    if metrics not in listing:
        raise WorkerError(
            ErrorClass.FILTER_FAILED, f"shard {index} is marked complete but has no {metrics}: nothing to merge"
        )
    reader.download_files(shard_rel(index), [metrics], dest)
    rels = [rel for rel in shard_files_to_download(listing, dest / metrics, skip_inverse_folding) if rel != metrics]
    reader.download_files(shard_rel(index), rels, dest)
    files = [dest / metrics, *(dest / rel for rel in rels)]
    return len(files), sum(p.stat().st_size for p in files)


def filter_designs(run: FilterRun, config_dir: Path) -> RunSummary:
    started, started_at = time.monotonic(), utc_now()
    spec = config_dir / run.spec_file
    check_spec(spec)
    fetch_downloads(run.downloads)
    check_models(run.models)  # boltzgen configures every step (and checks their model paths) before filtering
    reader = StoreReader(run.results)
    complete = [i for i in range(run.num_shards) if reader.exists(f"{shard_rel(i)}/{SHARD_COMPLETE_MARKER}")]
    log.info("%d of %d shards are complete: %s", len(complete), run.num_shards, complete)
    if len(complete) < run.min_shards:
        raise WorkerError(
            ErrorClass.INVALID_INPUT,
            f"only {len(complete)} of {run.num_shards} design shards are complete; at least {run.min_shards} needed",
        )

    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR)) / "boltzgen-filter"
    if work.exists():
        shutil.rmtree(work)
    shards_dir, merged = work / "shards", work / "merged"
    sources, downloaded_files, downloaded_bytes = [], 0, 0
    download_started = time.monotonic()
    for index in complete:
        dest = shards_dir / shard_dir_name(index)
        files, size = download_shard(reader, index, dest, run.skip_inverse_folding)
        downloaded_files, downloaded_bytes = downloaded_files + files, downloaded_bytes + size
        sources.append(dest)
    download_seconds = time.monotonic() - download_started
    log.info(
        "downloaded %d files, %d bytes of %d shards in %.1f s",
        downloaded_files,
        downloaded_bytes,
        len(complete),
        download_seconds,
    )

    exe = boltzgen_executable()
    result = run_boltzgen(build_merge_argv(exe, sources, merged), cwd=work)
    error = filter_failure(result, "boltzgen merge")
    if error:
        raise error
    designs = count_csv_rows(designs_dir(merged, run.skip_inverse_folding) / METRICS_CSV)
    if not designs:
        raise WorkerError(ErrorClass.FILTER_FAILED, f"boltzgen merge of shards {complete} produced no designs")

    argv = build_filter_argv(
        exe, spec, merged, run.protocol, run.budget, run.skip_inverse_folding, run.options, run.models
    )
    result = run_boltzgen(argv, cwd=work)
    error = filter_failure(result, "boltzgen filtering")
    if error:
        raise error
    final_dir = merged / FINAL_RANKED_DIR
    selected_csv = final_dir / selected_metrics_csv(run.budget)
    if not selected_csv.is_file():
        raise WorkerError(
            ErrorClass.FILTER_FAILED, f"boltzgen filtering exited 0 but wrote no {FINAL_RANKED_DIR}/{selected_csv.name}"
        )
    rows = read_csv(selected_csv)
    # boltzgen's filter drops repeated designed_sequence values (keeping the first) before ranking, and writes the
    # rest to all_designs_metrics.csv: the difference is what it dropped.
    kept = count_csv_rows(final_dir / ALL_METRICS_CSV)
    duplicates = designs - kept if kept is not None else None

    target = sub_target(run.results, FILTER_DIR)
    store = open_results_store(target)
    uploaded = 0
    for path in sorted(p for p in final_dir.rglob("*") if p.is_file()):
        store.put_file(f"{FINAL_RANKED_DIR}/{path.relative_to(final_dir).as_posix()}", path)
        uploaded += 1
    for name in MERGED_CSVS:
        path = designs_dir(merged, run.skip_inverse_folding) / name
        if path.is_file():
            store.put_file(f"merged/{name}", path)
            uploaded += 1
    top = top_designs(rows, run.top_designs)
    facts = [("designs merged", designs), ("dropped as repeated sequences", duplicates),
             ("selected", len(rows)), ("budget", run.budget), ("shards merged", len(complete))]  # fmt: skip
    report = upload_report(store, final_dir, rows, run.budget, facts, target.uri)
    result_doc = {
        "contract": run.contract,
        "results_uri": target.uri,
        "shards_merged": complete,
        "designs_merged": designs,
        "designs_duplicates_dropped": duplicates,
        "designs_selected": len(rows),
        "budget": run.budget,
        "top_designs": [t.model_dump(mode="json") for t in top_designs(rows, len(rows))],
        "files": uploaded,
        "report": report,
        "started_at": started_at,
        "finished_at": utc_now(),
        "download": {"files": downloaded_files, "bytes": downloaded_bytes},
        "timings": {"download": round(download_seconds, 2), "total": round(time.monotonic() - started, 1)},
    }
    store.put_bytes(RESULT_FILE, json.dumps(result_doc, indent=2).encode() + b"\n")  # LAST
    return RunSummary(
        ok=True,
        results_uri=target.uri,
        designs_completed=designs,
        shards_merged=complete,
        designs_duplicates_dropped=duplicates,
        designs_selected=len(rows),
        top_designs=top,
        report=report,
    )


def upload_report(
    store: ResultsStore, final_dir: Path, rows: list[dict[str, str]], budget: int, facts: list, uri: str
) -> str | None:
    """Write and upload the campaign's HTML report beside final_ranked_designs/; REPORT_FILE, or None on failure.

    A report is a view of results already stored: a failure to draw one is logged and never fails the filter.
    """
    try:
        from boltz_worker.report.campaign import campaign_report

        all_csv = final_dir / ALL_METRICS_CSV
        designs_dir = final_dir / f"final_{budget}_designs"  # boltzgen: rank<k>_<file_name>, the refolded cif
        files = sorted(p.name for p in designs_dir.glob("rank*")) if designs_dir.is_dir() else []
        links = {}
        for row in rows:
            name = row.get("file_name") or ""
            match = next((f for f in files if name and f.endswith(f"_{name}")), None)
            if match:
                links[row.get("id", "")] = f"{FINAL_RANKED_DIR}/{designs_dir.name}/{match}"
        html = campaign_report(
            rows, read_csv(all_csv) if all_csv.is_file() else [], KEY_METRICS, links,
            f"BoltzGen campaign {uri}", facts,
        )  # fmt: skip
        store.put_bytes(REPORT_FILE, html.encode())
    except Exception:  # noqa: BLE001 (see the docstring)
        log.exception("the HTML report could not be made; the results are complete without it")
        return None
    log.info("report: %s/%s (%d bytes)", uri, REPORT_FILE, len(html.encode()))
    return REPORT_FILE


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def top_designs(rows: list[dict[str, str]], count: int) -> list[TopDesign]:
    """The best `count` rows by boltzgen's final_rank (file order when a rank is missing)."""

    def rank_of(item: tuple[int, dict]) -> tuple[float, int]:
        position, row = item
        return (_number(row.get("final_rank")) or float("inf"), position)

    ordered = [row for _, row in sorted(enumerate(rows), key=rank_of)]
    designs = []
    for position, row in enumerate(ordered[:count], start=1):
        rank = _number(row.get("final_rank"))
        metrics = {}
        for group in KEY_METRICS:
            for name in group:
                value = _number(row.get(name))
                if value is not None:
                    metrics[name] = round(value, 4)
                    break
        designs.append(
            TopDesign(
                rank=int(rank) if rank is not None else position,
                id=row.get("id", ""),
                sequence=row.get("designed_sequence") or row.get("designed_chain_sequence") or None,
                metrics=metrics,
            )
        )
    return designs


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN -> None

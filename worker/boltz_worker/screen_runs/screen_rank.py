"""`boltz-worker screen-rank`: the screen's last Job. Merges the shard tables (<results>/shards/<i>/TABLE_FILE),
prepare's rejected rows (REJECTED_FILE) and, for a shard that did not complete, its slice's ligands missing from its
table (failed: not predicted), ranks them (ranking.py), writes <results>/RANKED_CSV (a `rank` column, then the
LigandRow columns) and <results>/RANKED_PARQUET (the same rows and columns, typed: table.rows_to_parquet) and reports
the top K.

Writes the screen's HTML report (report/screen.py) beside it. Returns RunSummary(ok, results_uri (the screen's),
ligands_total, ligands_done, ligands_failed, top_ligands, report).
"""

from __future__ import annotations

import logging

from boltz_contract import REPORT_FILE, SHARD_COMPLETE_MARKER, ErrorClass, RunSummary, WorkerError
from boltz_contract.screen import RANKED_CSV, RANKED_PARQUET, SHARDS_DIR, TABLE_FILE, LigandRow, ScreenRankRun
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.results.results_store import ResultsStore, open_results_store
from boltz_worker.screen_runs.ranking import rank_rows, top_ligands
from boltz_worker.screen_runs.slices import read_rejected, read_slice
from boltz_worker.screen_runs.table import failed_row, is_settled, rows_from_csv, rows_to_csv, rows_to_parquet

log = logging.getLogger(__name__)


def screen_rank(run: ScreenRankRun) -> RunSummary:
    """Rank the screen of `run`. Raises WorkerError: RESULTS_STORE_ERROR (the store), INTERNAL (a damaged table or
    slice, or a ligand in two shards)."""
    reader = StoreReader(run.results)
    rows = merged_rows(reader, run.num_shards, run.affinity)
    ranked = rank_rows(rows, run.affinity)
    ordered, first = [row for _, row in ranked], {"rank": [rank for rank, _ in ranked]}
    store = open_results_store(run.results)
    store.put_bytes(RANKED_CSV, rows_to_csv(ordered, first))
    store.put_bytes(RANKED_PARQUET, rows_to_parquet(ordered, first))  # made in memory: the store puts it whole
    failed = sum(1 for row in rows if row.error)
    log.info("%d ligands ranked (%d failed) into %s and %s", len(rows), failed, store.uri_for(RANKED_CSV),
             RANKED_PARQUET)  # fmt: skip
    facts = [("ligands", len(rows)), ("predicted", len(rows) - failed), ("failed", failed),
             ("shards", run.num_shards), ("affinity", "yes" if run.affinity else "no (structure only)")]  # fmt: skip
    return RunSummary(
        ok=True,
        results_uri=run.results.uri,
        ligands_total=len(rows),
        ligands_done=len(rows) - failed,
        ligands_failed=failed,
        top_ligands=top_ligands(ranked, run.top_k, run.affinity),
        report=upload_report(store, ranked, run, facts),
    )


def upload_report(
    store: ResultsStore, ranked: list[tuple[int, LigandRow]], run: ScreenRankRun, facts: list
) -> str | None:
    """Write and upload the screen's HTML report beside ranked.csv; REPORT_FILE, or None when it could not be made
    (logged: a report is a view of results already stored and never fails the rank step)."""
    try:
        from boltz_worker.report.screen import screen_report

        page = screen_report(ranked, run.affinity, f"BoltzScreen {run.results.uri}", facts, run.top_k)
        store.put_bytes(REPORT_FILE, page.encode())
    except Exception:  # noqa: BLE001 (see the docstring)
        log.exception("the HTML report could not be made; the ranked table is complete without it")
        return None
    return REPORT_FILE


def merged_rows(reader: StoreReader, num_shards: int, affinity: bool) -> list[LigandRow]:
    """Every ligand of the screen once: prepare's rejected rows, then each shard's rows; a ligand of a slice that
    its shard's table does not settle is failed, saying whether the shard completed."""
    rows = {row.id: row for row in read_rejected(reader)}
    for index in range(num_shards):
        rel = f"{SHARDS_DIR}/{index}"
        table = {}
        if reader.exists(f"{rel}/{TABLE_FILE}"):
            try:
                table = {row.id: row for row in rows_from_csv(reader.read_bytes(f"{rel}/{TABLE_FILE}"))}
            except ValueError as e:
                raise WorkerError(ErrorClass.INTERNAL, f"{rel}/{TABLE_FILE} is damaged: {e}") from e
        complete = reader.exists(f"{rel}/{SHARD_COMPLETE_MARKER}")
        for ligand in read_slice(reader, index).ligands:
            if ligand.id in rows:
                raise WorkerError(ErrorClass.INTERNAL, f"ligand {ligand.id} is in shard {index} and before it")
            row = table.get(ligand.id)
            if row is None or not is_settled(row, affinity):
                why = "its shard completed without a row for it" if complete else f"shard {index} did not complete"
                row = failed_row(ligand.model_dump(), f"not predicted: {why}")
            rows[ligand.id] = row
    return list(rows.values())

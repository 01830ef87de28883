"""A running shard's progress: what boltz has finished, uploaded every upload interval, and what a re-run skips.

boltz 2.2.1's `boltz predict` over a directory (boltz/main.py predict) runs the structure step for every input, then
the affinity step for every input with an affinity property; its writers (boltz/data/write/writer.py) write one
record at a time under <out>/predictions/<record>/: per model, the structure, pre_affinity_<record>.npz (model 0,
affinity inputs), confidence_<record>_model_<k>.json, then pLDDT/PAE/PDE arrays; affinity_<record>.json in the
affinity step. A ligand's structure is complete when its files for every model are there and boltz has moved on to
another record (its directory is not the newest) or to the affinity step, or has exited; its row is settled when,
for an affinity screen, its affinity JSON is there too.

Every `interval` seconds (tick) and at the end (sync(final=True)) the new or changed files of the ligands whose
structure is complete go to <shard>/<ligand id>/ and the settled rows to <shard>/TABLE_FILE: a preempted shard loses
at most the ligand in flight and one interval. A re-run skips the ligands of the table (settled_rows) and gets back
the uploaded structures of the others (restore), which boltz then does not predict again: it skips a record whose
predictions directory exists (filter_inputs_structure) and predicts its affinity from pre_affinity_<record>.npz.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.screen import TABLE_FILE, LigandRow
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.results.results_store import ResultsStore
from boltz_worker.screen_runs.table import failed_row, is_settled, ligand_row, read_json, rows_from_csv, rows_to_csv

log = logging.getLogger(__name__)


def structure_files(record: str, diffusion_samples: int, affinity: bool, suffix: str) -> list[str]:
    """The files a complete structure step leaves for `record` (those a re-run needs to skip it)."""
    names = [f"{record}_model_{k}.{suffix}" for k in range(diffusion_samples)]
    names += [f"confidence_{record}_model_{k}.json" for k in range(diffusion_samples)]
    return names + ([f"pre_affinity_{record}.npz"] if affinity else [])


class ShardProgress:
    """The rows of one shard as boltz produces them, and their uploads (thread-safe: a timer thread ticks)."""

    def __init__(
        self, store: ResultsStore, predictions: Path, ligands: list[dict], settled: dict[str, LigandRow], *,
        affinity: bool, diffusion_samples: int, suffix: str, structure_prefix: str, ligand_index: int | None,
        interval: float, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        """store: the shard's own target (<results>/shards/<i>); predictions: boltz's predictions directory;
        ligands: the slice's ligands ({id, smiles, ccd}), in order; settled: rows of an earlier run; suffix: cif or
        pdb; structure_prefix: the shard's path under the screen's results (rows name structures from there)."""
        self.store, self.predictions, self.ligands = store, predictions, ligands
        self.rows: dict[str, LigandRow] = dict(settled)
        self.affinity, self.samples, self.suffix = affinity, diffusion_samples, suffix
        self.structure_prefix, self.ligand_index = structure_prefix, ligand_index
        self.interval, self.clock = interval, clock
        self.uploaded: dict[tuple[str, str], tuple[int, float]] = {}  # (ligand, file) -> (size, mtime) sent
        self.affinity_step = False  # boltz is past its structure step (set from its log)
        self.last_sync = clock()
        self.table_sent: bytes | None = None
        self.lock = threading.Lock()

    def pending(self) -> list[dict]:
        return [ligand for ligand in self.ligands if ligand["id"] not in self.rows]

    def tick(self) -> bool:
        """sync() when `interval` has passed since the last one; True when it did."""
        if self.clock() - self.last_sync < self.interval:
            return False
        self.sync()
        return True

    def sync(self, final: bool = False) -> None:
        """Upload what is complete (see the module's docstring); `final`: boltz has exited, nothing is in flight.
        Raises WorkerError(RESULTS_STORE_ERROR) from the store."""
        with self.lock:
            newest = None if final or self.affinity_step else self._newest_pending()
            for ligand in self.pending():
                directory = self.predictions / ligand["id"]
                if ligand["id"] == newest or not self._structure_complete(directory, ligand["id"]):
                    continue
                self._upload_files(ligand["id"], directory)
                row = self._row(ligand, directory)
                if row is not None:
                    self.rows[ligand["id"]] = row
            self._upload_table()
            self.last_sync = self.clock()

    def fail(self, ligand: dict, reason: str) -> None:
        with self.lock:
            self.rows[ligand["id"]] = failed_row(ligand, reason)

    def table_rows(self) -> list[LigandRow]:
        return [self.rows[x["id"]] for x in self.ligands if x["id"] in self.rows]

    def _structure_complete(self, directory: Path, record: str) -> bool:
        names = structure_files(record, self.samples, self.affinity, self.suffix)
        return directory.is_dir() and all((directory / n).is_file() for n in names)

    def _newest_pending(self) -> str | None:
        """The pending ligand whose directory changed last: the one boltz may be writing."""
        newest, when = None, -1.0
        for ligand in self.pending():
            directory = self.predictions / ligand["id"]
            if directory.is_dir():
                changed = max([directory.stat().st_mtime, *(p.stat().st_mtime for p in directory.iterdir())])
                if changed > when:
                    newest, when = ligand["id"], changed
        return newest

    def _upload_files(self, record: str, directory: Path) -> None:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            stat = path.stat()
            if self.uploaded.get((record, path.name)) != (stat.st_size, stat.st_mtime):
                self.store.put_file(f"{record}/{path.name}", path)
                self.uploaded[(record, path.name)] = (stat.st_size, stat.st_mtime)

    def _row(self, ligand: dict, directory: Path) -> LigandRow | None:
        record = ligand["id"]
        confidence = read_json(directory / f"confidence_{record}_model_0.json")
        affinity = read_json(directory / f"affinity_{record}.json") if self.affinity else None
        if confidence is None or (self.affinity and affinity is None):
            return None  # the affinity step has not reached it yet
        structure = f"{self.structure_prefix}/{record}/{record}_model_0.{self.suffix}"
        return ligand_row(ligand, confidence, affinity, structure, self.ligand_index)

    def _upload_table(self) -> None:
        data = rows_to_csv(self.table_rows())
        if data != self.table_sent:
            self.store.put_bytes(TABLE_FILE, data)
            self.table_sent = data


def settled_rows(reader: StoreReader, shard_rel: str, affinity: bool) -> dict[str, LigandRow]:
    """The settled rows (table.is_settled) of the shard's table in the store; none when there is no table.

    Raises WorkerError(RESULTS_STORE_ERROR) when the store cannot be read, (INTERNAL) for a damaged table."""
    rel = f"{shard_rel}/{TABLE_FILE}"
    if not reader.exists(rel):
        return {}
    try:
        rows = rows_from_csv(reader.read_bytes(rel))
    except ValueError as e:
        raise WorkerError(ErrorClass.INTERNAL, f"{rel} is damaged: {e}") from e
    return {row.id: row for row in rows if is_settled(row, affinity)}


def restore(reader: StoreReader, shard_rel: str, progress: ShardProgress) -> list[str]:
    """Download the uploaded files of the pending ligands whose structure is complete in the store into boltz's
    predictions directory (so boltz does not predict them again); returns their ids."""
    by_ligand: dict[str, list[str]] = {}
    for rel in reader.list(shard_rel):
        owner, _, name = rel.partition("/")
        if name and "/" not in name:
            by_ligand.setdefault(owner, []).append(name)
    restored = []
    for ligand in progress.pending():
        record = ligand["id"]
        names = by_ligand.get(record, [])
        if not set(structure_files(record, progress.samples, progress.affinity, progress.suffix)) <= set(names):
            continue
        reader.download_files(f"{shard_rel}/{record}", names, progress.predictions / record)
        for name in names:
            stat = (progress.predictions / record / name).stat()
            progress.uploaded[(record, name)] = (stat.st_size, stat.st_mtime)
        restored.append(record)
    return restored

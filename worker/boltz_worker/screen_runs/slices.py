"""The shard slices and prepare's rejected rows, in the screen's results store.

<results>/LIBRARY_DIR/<i>.json: ShardSlice i (its ligands, in library order); <results>/REJECTED_FILE: the
ligands prepare refused, as LigandRow JSON with `error` (rank puts them in the ranked table).
"""

from __future__ import annotations

import json
import math

from pydantic import ValidationError

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.screen import LIBRARY_DIR, REJECTED_FILE, LigandRow, ScreenLigand, ShardSlice
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.results.results_store import ResultsStore


def slice_ligands(ligands: list[dict], per_shard: int) -> list[ShardSlice]:
    """Consecutive slices of `ligands` ({id, smiles, ccd}), `per_shard` each, the last one the remainder:
    ceil(len / per_shard) slices, none empty. Raises ValueError for per_shard < 1."""
    if per_shard < 1:
        raise ValueError(f"per_shard must be at least 1, not {per_shard}")
    count = math.ceil(len(ligands) / per_shard)
    return [
        ShardSlice(shard_index=i, ligands=[ScreenLigand.model_validate(x) for x in ligands[i * per_shard : (i + 1) * per_shard]])
        for i in range(count)
    ]  # fmt: skip


def slice_rel(index: int) -> str:
    return f"{LIBRARY_DIR}/{index}.json"


def write_slices(store: ResultsStore, slices: list[ShardSlice], rejected: list[LigandRow]) -> None:
    """Every slice, then the rejected rows (always written, `[]` when none: rank reads it)."""
    for shard in slices:
        store.put_bytes(slice_rel(shard.shard_index), shard.model_dump_json(exclude_none=True).encode())
    store.put_bytes(REJECTED_FILE, json.dumps([r.model_dump(exclude_none=True) for r in rejected]).encode())


def read_slice(reader: StoreReader, index: int) -> ShardSlice:
    """Raises WorkerError: RESULTS_STORE_ERROR (missing or unreadable: prepare has not written it), INTERNAL (not a
    ShardSlice of that index)."""
    try:
        shard = ShardSlice.model_validate_json(reader.read_bytes(slice_rel(index)))
    except ValidationError as e:
        raise WorkerError(ErrorClass.INTERNAL, f"{slice_rel(index)} is not a shard slice: {e}") from e
    if shard.shard_index != index:
        raise WorkerError(ErrorClass.INTERNAL, f"{slice_rel(index)} holds shard {shard.shard_index}")
    return shard


def read_rejected(reader: StoreReader) -> list[LigandRow]:
    """Prepare's rejected rows; none when the file is absent."""
    if not reader.exists(REJECTED_FILE):
        return []
    try:
        return [LigandRow.model_validate(r) for r in json.loads(reader.read_bytes(REJECTED_FILE))]
    except (ValueError, TypeError) as e:
        raise WorkerError(ErrorClass.INTERNAL, f"{REJECTED_FILE} is not a list of ligand rows: {e}") from e

"""A running shard's progress (progress.py) with a fake clock: uploads only every interval, the ligand in flight held
back, affinity rows settled only with their affinity, a re-run skipping settled rows and restoring uploaded
structures; and the target's placeholder made each ligand's input (target.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from boltz_contract import ErrorClass, ResultsTarget, WorkerError
from boltz_contract.screen import TABLE_FILE
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.results.results_store import LocalDirResultsStore
from boltz_worker.screen_runs.progress import ShardProgress, restore, settled_rows, structure_files
from boltz_worker.screen_runs.table import rows_from_csv
from boltz_worker.screen_runs.target import ligand_chain_index, ligand_input, with_placeholder

LIGANDS = [{"id": f"L{i}", "smiles": "C" * (i + 1), "ccd": None} for i in range(4)]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingStore(LocalDirResultsStore):
    def __init__(self, base: Path):
        super().__init__("pvc://results/screen/shards/0", base)
        self.puts: list[str] = []

    def put_file(self, rel, local_path):
        self.puts.append(rel)
        super().put_file(rel, local_path)

    def put_bytes(self, rel, data):
        self.puts.append(rel)
        super().put_bytes(rel, data)


def write_structure(predictions: Path, record: str, affinity: bool, mtime: float, probability: float | None = None):
    directory = predictions / record
    directory.mkdir(parents=True, exist_ok=True)
    for name in structure_files(record, 1, affinity, "cif"):
        content = (
            json.dumps({"confidence_score": 0.5, "iptm": 0.4, "ligand_iptm": 0.3}) if name.endswith(".json") else "x"
        )
        (directory / name).write_text(content)
    if probability is not None:
        (directory / f"affinity_{record}.json").write_text(json.dumps({"affinity_pred_value": -1.0,
                                                                       "affinity_probability_binary": probability}))  # fmt: skip
    for path in [*directory.iterdir(), directory]:
        os.utime(path, (mtime, mtime))


def progress_of(tmp_path, affinity=False, settled=None, interval=300.0):
    clock, store = Clock(), RecordingStore(tmp_path / "store" / "shards" / "0")
    progress = ShardProgress(store, tmp_path / "predictions", LIGANDS, settled or {}, affinity=affinity,
                             diffusion_samples=1, suffix="cif", structure_prefix="shards/0", ligand_index=None,
                             interval=interval, clock=clock)  # fmt: skip
    return progress, clock, store


def table(store: RecordingStore):
    return rows_from_csv((store.base / TABLE_FILE).read_bytes())


def test_uploads_happen_once_an_interval_and_hold_back_the_ligand_in_flight(tmp_path):
    progress, clock, store = progress_of(tmp_path, interval=300)
    write_structure(progress.predictions, "L0", False, mtime=10)
    write_structure(progress.predictions, "L1", False, mtime=20)  # the newest: boltz may still be writing it
    clock.now += 299
    assert not progress.tick()
    assert store.puts == []
    clock.now += 1
    assert progress.tick()
    assert [r.id for r in table(store)] == ["L0"]
    assert sorted(p for p in store.puts if p.startswith("L0/")) == [
        "L0/L0_model_0.cif",
        "L0/confidence_L0_model_0.json",
    ]
    assert not any(p.startswith("L1/") for p in store.puts)
    write_structure(progress.predictions, "L2", False, mtime=30)
    clock.now += 100
    assert not progress.tick()  # the interval counts from the last upload
    clock.now += 200
    assert progress.tick()
    assert [r.id for r in table(store)] == ["L0", "L1"]
    assert store.puts.count("L0/L0_model_0.cif") == 1  # never sent twice
    progress.sync(final=True)  # boltz exited: nothing in flight
    assert [r.id for r in table(store)] == ["L0", "L1", "L2"]
    assert table(store)[2].structure == "shards/0/L2/L2_model_0.cif"


def test_an_unchanged_table_is_not_uploaded_again(tmp_path):
    progress, clock, store = progress_of(tmp_path, interval=10)
    write_structure(progress.predictions, "L0", False, mtime=10)
    progress.sync(final=True)
    clock.now += 10
    assert progress.tick()
    assert store.puts.count(TABLE_FILE) == 1


def test_affinity_rows_settle_with_their_affinity_while_structures_upload_before(tmp_path):
    progress, clock, store = progress_of(tmp_path, affinity=True)
    write_structure(progress.predictions, "L0", True, mtime=10)
    write_structure(progress.predictions, "L1", True, mtime=20)
    progress.affinity_step = True  # boltz said "Predicting property: affinity": every structure is written
    progress.sync()
    assert table(store) == []
    assert "L1/pre_affinity_L1.npz" in store.puts
    (progress.predictions / "L1" / "affinity_L1.json").write_text(
        '{"affinity_probability_binary": 0.7, "affinity_pred_value": 0.1}'
    )
    (progress.predictions / "L0" / "affinity_L0.json").write_text('{"affinity_probability_')  # being written
    progress.sync()
    assert [(r.id, r.affinity_probability_binary) for r in table(store)] == [("L1", 0.7)]


def test_a_re_run_skips_settled_rows_and_restores_uploaded_structures(tmp_path):
    first, _, store = progress_of(tmp_path, affinity=True)
    write_structure(first.predictions, "L0", True, mtime=10, probability=0.9)
    write_structure(first.predictions, "L1", True, mtime=20)  # structure done, affinity not yet: preempted
    first.fail(LIGANDS[3], "boltz refused the input: bad")
    first.sync(final=True)
    target = ResultsTarget(uri="pvc://results/screen", local_dir=str(tmp_path / "store"))
    reader = StoreReader(target)
    settled = settled_rows(reader, "shards/0", affinity=True)
    assert sorted(settled) == ["L0", "L3"]
    second = ShardProgress(store, tmp_path / "again" / "predictions", LIGANDS, settled, affinity=True,
                           diffusion_samples=1, suffix="cif", structure_prefix="shards/0", ligand_index=None,
                           interval=300)  # fmt: skip
    assert [x["id"] for x in second.pending()] == ["L1", "L2"]
    assert restore(reader, "shards/0", second) == ["L1"]
    assert (second.predictions / "L1" / "pre_affinity_L1.npz").is_file()
    puts = len(store.puts)
    (second.predictions / "L1" / "affinity_L1.json").write_text('{"affinity_probability_binary": 0.2}')
    second.sync(final=True)
    assert store.puts[puts:] == ["L1/affinity_L1.json", TABLE_FILE]  # the restored files are not sent again
    assert [r.id for r in table(store)] == ["L0", "L1", "L3"]


def test_a_damaged_table_in_the_store_is_internal(tmp_path):
    (tmp_path / "shards" / "0").mkdir(parents=True)
    (tmp_path / "shards" / "0" / TABLE_FILE).write_text("id,smiles\nL0,C\n")
    with pytest.raises(WorkerError) as e:
        settled_rows(StoreReader(ResultsTarget(uri="pvc://r", local_dir=str(tmp_path))), "shards/0", affinity=False)
    assert e.value.error_class == ErrorClass.INTERNAL


TARGET = {"version": 1, "sequences": [
    {"protein": {"id": ["A", "B"], "sequence": "MKTAYIAK", "msa": "a.a3m"}},
    {"ligand": {"id": "C", "ccd": "SAH"}},
    {"ligand": {"id": "L", "smiles": "CCO"}},
], "properties": [{"affinity": {"binder": "L"}}]}  # fmt: skip


def test_each_ligand_s_input_is_the_target_with_the_placeholder_s_molecule_replaced():
    doc = with_placeholder(TARGET, "L", affinity=True)
    assert doc == TARGET
    made = ligand_input(doc, "L", {"id": "x", "smiles": "c1ccccc1", "ccd": None})
    assert made["sequences"][2] == {"ligand": {"id": "L", "smiles": "c1ccccc1"}}
    assert made["sequences"][:2] == TARGET["sequences"][:2] and made["properties"] == TARGET["properties"]
    assert ligand_input(doc, "L", {"id": "y", "smiles": None, "ccd": "ATP"})["sequences"][2] == {
        "ligand": {"id": "L", "ccd": "ATP"}
    }
    assert TARGET["sequences"][2]["ligand"]["smiles"] == "CCO"  # the target is not changed


def test_the_placeholder_and_affinity_property_are_added_or_dropped_as_the_run_asks():
    bare = {"version": 1, "sequences": TARGET["sequences"][:2]}
    added = with_placeholder(bare, "L", affinity=True)
    assert added["sequences"][2] == {"ligand": {"id": "L", "smiles": "CCO"}}
    assert added["properties"] == [{"affinity": {"binder": "L"}}]
    assert "properties" not in with_placeholder(TARGET, "L", affinity=False)
    with pytest.raises(WorkerError, match="not a single ligand entry"):
        with_placeholder(TARGET, "B", affinity=False)


def test_the_screened_ligand_s_chain_index_only_when_other_ligands_share_the_target():
    assert ligand_chain_index(TARGET, "L") == 3  # A, B (one entity), C, then L
    assert ligand_chain_index({"sequences": [TARGET["sequences"][0], TARGET["sequences"][2]]}, "L") is None

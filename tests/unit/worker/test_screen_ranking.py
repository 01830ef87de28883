"""A screen's slices, its tables (CSV round trip, the typed Parquet twin, rows from boltz's JSON), its ranking, the
top-K summary, and screen-rank over a results PVC directory."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from boltz_contract import TERMINATION_MESSAGE_LIMIT, ResultsTarget, RunSummary
from boltz_contract.screen import LigandRow, ScreenRankRun
from boltz_worker.results.results_store import open_results_store
from boltz_worker.screen_runs.ranking import rank_rows, top_ligands
from boltz_worker.screen_runs.screen_rank import screen_rank
from boltz_worker.screen_runs.slices import slice_ligands, write_slices
from boltz_worker.screen_runs.table import (
    ligand_row,
    rows_from_csv,
    rows_to_csv,
    rows_to_parquet,
    screened_ligand_iptm,
)

RANKED_SCHEMA = pa.schema([
    pa.field("rank", pa.int64(), nullable=False), pa.field("id", pa.string(), nullable=False),
    ("smiles", pa.string()), ("ccd", pa.string()), ("affinity_pred_value", pa.float64()),
    ("affinity_probability_binary", pa.float64()), ("iptm", pa.float64()), ("ligand_iptm", pa.float64()),
    ("complex_plddt", pa.float64()), ("confidence_score", pa.float64()), ("structure", pa.string()),
    ("error", pa.string()),
])  # fmt: skip


def ligands(n: int) -> list[dict]:
    return [{"id": f"L{i}", "smiles": "C" * (i + 1), "ccd": None} for i in range(n)]


@pytest.mark.parametrize(("n", "per_shard", "sizes"), [
    (10, 3, [3, 3, 3, 1]), (9, 3, [3, 3, 3]), (1, 5, [1]), (5, 1, [1, 1, 1, 1, 1]), (0, 4, []),
])  # fmt: skip
def test_slices_are_consecutive_per_shard_each_the_last_the_remainder(n, per_shard, sizes):
    slices = slice_ligands(ligands(n), per_shard)
    assert [len(s.ligands) for s in slices] == sizes
    assert [s.shard_index for s in slices] == list(range(len(sizes)))
    assert [x.id for s in slices for x in s.ligands] == [x["id"] for x in ligands(n)]


def test_slicing_refuses_a_zero_shard_size():
    with pytest.raises(ValueError):
        slice_ligands(ligands(2), 0)


def row(ident: str, p=None, v=None, lig=None, iptm=None, error=None) -> LigandRow:
    return LigandRow(id=ident, smiles="C", affinity_probability_binary=p, affinity_pred_value=v, ligand_iptm=lig,
                     iptm=iptm, confidence_score=None if error else 0.5, error=error)  # fmt: skip


def test_affinity_screens_rank_by_probability_then_lower_value_failed_last():
    rows = [row("a", 0.5, -1.0), row("bad", error="boltz refused it"), row("b", 0.9, 0.5), row("c", 0.9, -2.0),
            row("d", 0.1, -9.0), row("nofig")]  # fmt: skip
    ranked = rank_rows(rows, affinity=True)
    assert [(r, x.id) for r, x in ranked] == [(1, "c"), (2, "b"), (3, "a"), (4, "d"), (5, "bad"), (5, "nofig")]


def test_equal_figures_share_a_rank_and_are_listed_by_id():
    rows = [row("z", 0.7, -1.0), row("a", 0.7, -1.0), row("m", 0.8, 0.0), row("q", 0.6, 0.0)]
    assert [(r, x.id) for r, x in rank_rows(rows, affinity=True)] == [(1, "m"), (2, "a"), (2, "z"), (4, "q")]


def test_structure_only_screens_rank_by_ligand_iptm_then_iptm():
    rows = [row("a", lig=0.4, iptm=0.9), row("b", lig=0.6, iptm=0.1), row("c", lig=0.6, iptm=0.3), row("x", error="e")]
    assert [x.id for _, x in rank_rows(rows, affinity=False)] == ["c", "b", "a", "x"]
    assert [x.id for _, x in rank_rows(rows, affinity=True)] == ["a", "b", "c", "x"]  # none has affinity: by id


def test_top_k_stops_at_k_and_at_the_first_row_without_figures():
    ranked = rank_rows([row("a", 0.5, 0.0), row("b", 0.4, 0.0), row("c", error="e")], affinity=True)
    assert [t.id for t in top_ligands(ranked, 1, affinity=True)] == ["a"]
    assert [(t.rank, t.id) for t in top_ligands(ranked, 10, affinity=True)] == [(1, "a"), (2, "b")]


def test_the_rank_summary_with_long_smiles_fits_the_termination_message_keeping_the_best():
    rows = [LigandRow(id=f"ligand-{i:05d}", smiles="C" * 180 + "O" * (i % 7), affinity_probability_binary=1 - i / 1000,
                      affinity_pred_value=-1.0, iptm=0.5, ligand_iptm=0.4, confidence_score=0.6) for i in range(200)]  # fmt: skip
    ranked = rank_rows(rows, affinity=True)
    summary = RunSummary(ok=True, results_uri="s3://b/p", ligands_total=200, ligands_done=200, ligands_failed=0,
                         top_ligands=top_ligands(ranked, 50, affinity=True))  # fmt: skip
    text = summary.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    kept = json.loads(text)["top_ligands"]
    assert 5 < len(kept) < 50
    assert [x["id"] for x in kept] == [f"ligand-{i:05d}" for i in range(len(kept))]
    assert json.loads(text)["ligands_total"] == 200


def test_tables_round_trip_through_csv_with_a_leading_rank_column():
    rows = [row("a", 0.5, -1.25, lig=0.3, iptm=0.2), row("b", error='boltz refused it: "x", y')]
    data = rows_to_csv(rows, first={"rank": [1, 2]})
    assert data.decode().splitlines()[0].startswith("rank,id,smiles,ccd,affinity_pred_value,")
    assert rows_from_csv(data) == rows


def test_the_parquet_table_holds_the_csv_rows_typed_with_nulls_for_a_failed_ligand():
    rows = [LigandRow(id="a", smiles="CCO", affinity_pred_value=-1.25, affinity_probability_binary=0.5, iptm=0.2,
                      ligand_iptm=0.3, complex_plddt=0.71, confidence_score=0.6, structure="shards/0/a/a_model_0.cif"),
            LigandRow(id="ATP", ccd="ATP", affinity_pred_value=0.0, confidence_score=0.1),
            row("b", error='boltz refused it: "x", y')]  # fmt: skip
    first = {"rank": [1, 2, 3]}
    table = pq.read_table(pa.BufferReader(rows_to_parquet(rows, first)))
    assert table.schema.remove_metadata() == RANKED_SCHEMA  # the CSV's columns in its order, typed
    assert table.column_names == next(csv.reader(io.StringIO(rows_to_csv(rows, first).decode())))
    assert table.to_pylist() == [{"rank": r, **x.model_dump()} for r, x in zip([1, 2, 3], rows, strict=True)]
    assert table.column("affinity_pred_value").null_count == 1  # the failed ligand's: null, not NaN, not 0
    assert table.column("affinity_pred_value").to_pylist()[1] == 0.0  # a real zero stays a zero
    assert table.column("smiles").to_pylist()[1] is None and table.column("ccd").to_pylist()[0] is None


def test_an_empty_ranked_table_is_a_parquet_file_with_the_columns_and_no_rows():
    table = pq.read_table(pa.BufferReader(rows_to_parquet([], {"rank": []})))
    assert table.num_rows == 0 and table.schema.remove_metadata() == RANKED_SCHEMA


def test_screen_rank_on_a_results_pvc_writes_the_csv_and_its_parquet_twin_whole(tmp_path):
    target = ResultsTarget(uri="pvc://results/ns/s/1", local_dir=str(tmp_path / "results"))
    store = open_results_store(target)
    write_slices(store, slice_ligands(ligands(3), 2), [LigandRow(id="bad", smiles="C1CC", error="RDKit: no")])
    store.put_bytes("shards/0/ligands.csv", rows_to_csv([row("L0", 0.2, -1.0), row("L1", 0.9, -2.0)]))
    store.put_bytes("shards/0/_COMPLETE", b"{}")  # shard 1 (L2) never ran
    summary = screen_rank(ScreenRankRun(num_shards=2, top_k=5, results=target))
    assert (summary.ligands_total, summary.ligands_failed) == (4, 2)
    base = tmp_path / "results"
    from_csv = list(csv.DictReader(io.StringIO((base / "ranked.csv").read_text())))
    table = pq.read_table(base / "ranked.parquet")
    assert table.schema.remove_metadata() == RANKED_SCHEMA
    parquet = table.to_pylist()
    assert [(x["rank"], x["id"]) for x in parquet] == [(1, "L1"), (2, "L0"), (3, "L2"), (3, "bad")]
    assert [{k: "" if v is None else str(v) for k, v in x.items()} for x in parquet] == from_csv  # the same cells
    assert parquet[2]["error"] == "not predicted: shard 1 did not complete" and parquet[2]["iptm"] is None
    assert not [p.name for p in base.iterdir() if p.name.startswith(".")]  # no temp file left beside them


def test_a_damaged_table_is_refused_naming_the_line():
    with pytest.raises(ValueError, match="line 2"):
        rows_from_csv(b"id,smiles,ccd,affinity_pred_value,affinity_probability_binary,iptm,ligand_iptm,complex_plddt,"
                      b"confidence_score,structure,error\n,C,,x,,,,,,,\n")  # fmt: skip


CONFIDENCE = {"confidence_score": 0.61, "iptm": 0.52, "ligand_iptm": 0.33, "complex_plddt": 0.7,
              "pair_chains_iptm": {"0": {"0": 0.9, "1": 0.2, "2": 0.45}, "1": {"0": 0.2, "1": 0.8, "2": 0.1},
                                   "2": {"0": 0.44, "1": 0.12, "2": 0.95}}}  # fmt: skip


def test_a_row_reads_boltz_s_figures_and_the_screened_ligand_s_own_iptm_among_other_ligands():
    affinity = {"affinity_pred_value": -0.8, "affinity_probability_binary": 0.66, "affinity_pred_value1": 1.0}
    made = ligand_row({"id": "L1", "smiles": "CCO"}, CONFIDENCE, affinity, "shards/0/L1/L1_model_0.cif", None)
    assert (made.affinity_pred_value, made.affinity_probability_binary, made.iptm, made.ligand_iptm,
            made.complex_plddt, made.confidence_score) == (-0.8, 0.66, 0.52, 0.33, 0.7, 0.61)  # fmt: skip
    assert screened_ligand_iptm(CONFIDENCE, 2) == 0.44  # the best of chain 2's pairs with the others
    assert screened_ligand_iptm({"ligand_iptm": 0.1}, 2) == 0.1  # no pairs: boltz's own

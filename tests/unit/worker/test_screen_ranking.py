"""A screen's slices, its tables (CSV round trip, rows from boltz's JSON), its ranking and the top-K summary."""

from __future__ import annotations

import json

import pytest

from boltz_contract import TERMINATION_MESSAGE_LIMIT, RunSummary
from boltz_contract.screen import LigandRow
from boltz_worker.screen_runs.ranking import rank_rows, top_ligands
from boltz_worker.screen_runs.slices import slice_ligands
from boltz_worker.screen_runs.table import ligand_row, rows_from_csv, rows_to_csv, screened_ligand_iptm


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

"""The order of a screen's ranked table.

boltz's docs (docs/prediction.md, "Affinity") advise `affinity_probability_binary` to tell binders from decoys (hit
discovery: what a screen does) and `affinity_pred_value` (log10 IC50 in uM, lower binds tighter) to compare binders;
so an affinity screen ranks by the probability, highest first, then by the predicted value, lowest first. A
structure-only screen has no affinity: it ranks by the screened ligand's interface confidence (`ligand_iptm`, see
table.screened_ligand_iptm), then by the complex's `iptm`, both highest first.

Rows without the figures they are ranked by (failed ligands: `error`) come last. Rows with equal figures share a rank
(competition ranking: 1, 2, 2, 4) and are listed by id; every failed row shares the rank after the last ranked one.
"""

from __future__ import annotations

from boltz_contract.screen import LigandRow, RankedLigand


def sort_key(row: LigandRow, affinity: bool) -> tuple[float, float] | None:
    """The figures `row` is ranked by, smaller first; None when it has none (failed, or the figures are missing)."""
    if row.error:
        return None
    if affinity:
        if row.affinity_probability_binary is None:
            return None
        value = row.affinity_pred_value if row.affinity_pred_value is not None else float("inf")
        return (-row.affinity_probability_binary, value)
    if row.ligand_iptm is None:
        return None
    return (-row.ligand_iptm, -(row.iptm if row.iptm is not None else float("-inf")))


def rank_rows(rows: list[LigandRow], affinity: bool) -> list[tuple[int, LigandRow]]:
    """(rank, row) for every row, best first (see the module's docstring for the order, ties and failed rows)."""
    keyed = [(sort_key(row, affinity), row) for row in rows]
    ranked = sorted(((k, r) for k, r in keyed if k is not None), key=lambda kr: (kr[0], kr[1].id))
    unranked = sorted((r for k, r in keyed if k is None), key=lambda r: r.id)
    out: list[tuple[int, LigandRow]] = []
    previous = None
    for position, (key, row) in enumerate(ranked, start=1):
        rank = out[-1][0] if previous is not None and key == previous else position
        out.append((rank, row))
        previous = key
    out += [(len(ranked) + 1, row) for row in unranked]
    return out


def top_ligands(ranked: list[tuple[int, LigandRow]], k: int, affinity: bool) -> list[RankedLigand]:
    """The first k rows of rank_rows' list that have the figures they are ranked by, as the summary reports them."""
    top: list[RankedLigand] = []
    for rank, row in ranked:
        if len(top) >= k or sort_key(row, affinity) is None:
            break
        top.append(
            RankedLigand(
                rank=rank, id=row.id, smiles=row.smiles, affinity_pred_value=row.affinity_pred_value,
                affinity_probability_binary=row.affinity_probability_binary, iptm=row.iptm,
                ligand_iptm=row.ligand_iptm, confidence_score=row.confidence_score,
            )
        )  # fmt: skip
    return top

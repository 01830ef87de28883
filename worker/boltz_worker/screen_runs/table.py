"""A screen's tables: LigandRow rows as CSV (a shard's TABLE_FILE, the ranked RANKED_CSV) and as Parquet (the ranked
RANKED_PARQUET), and a ligand's row made from the files boltz 2.2.1 wrote for it.

What the figures mean (boltz's docs/prediction.md, "Output"):
- confidence_<id>_model_<k>.json: `confidence_score` = 0.8 * complex_plddt + 0.2 * iptm (ptm when single-chain),
  `iptm` the interface TM-score over all chain pairs, `ligand_iptm` the ipTM of the interfaces between the ligand
  chains and the protein chains, `complex_plddt` the mean pLDDT, `pair_chains_iptm` the ipTM of each chain pair
  (keys: the chains' indices in the structure);
- affinity_<id>.json: `affinity_pred_value` log10(IC50) with IC50 in uM (lower binds tighter; meant to compare
  binders: hit-to-lead, lead optimisation), `affinity_probability_binary` the probability that the ligand binds
  (meant to tell binders from decoys: hit discovery, the figure to screen by).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from boltz_contract.screen import LigandRow

COLUMNS: tuple[str, ...] = tuple(LigandRow.model_fields)
FLOAT_COLUMNS = frozenset(
    name for name, field in LigandRow.model_fields.items() if "float" in str(field.annotation)
)  # fmt: skip
REQUIRED_COLUMNS = frozenset(name for name, field in LigandRow.model_fields.items() if field.is_required())  # id


def rows_to_csv(rows: list[LigandRow], first: dict[str, list] | None = None) -> bytes:
    """CSV bytes of `rows` (a header of COLUMNS; empty cells for None). `first`: extra leading columns, each a
    list of one value per row (the ranked table's `rank`)."""
    first = first or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*first, *COLUMNS])
    for index, row in enumerate(rows):
        values = row.model_dump()
        writer.writerow([*(first[k][index] for k in first), *("" if values[c] is None else values[c] for c in COLUMNS)])
    return out.getvalue().encode()


def rows_to_parquet(rows: list[LigandRow], first: dict[str, list[int]] | None = None) -> bytes:
    """Parquet bytes of `rows`, the columns of rows_to_csv typed: FLOAT_COLUMNS float64, the others string, None a
    null (a failed ligand's figures). `first`: extra leading int64 columns (the ranked table's `rank`).

    Written by pyarrow into memory, so the store puts the file whole (as the CSV) and never half-written."""
    import pyarrow as pa  # here, not at the top: only screen-rank needs it, and boltz_worker stays quick to import
    import pyarrow.parquet as pq

    first = first or {}
    dumped = [row.model_dump() for row in rows]
    fields = [pa.field(name, pa.int64(), nullable=False) for name in first]
    fields += [pa.field(c, pa.float64() if c in FLOAT_COLUMNS else pa.string(), nullable=c not in REQUIRED_COLUMNS)
               for c in COLUMNS]  # fmt: skip
    schema = pa.schema(fields)
    columns = [*first.values(), *([values[c] for values in dumped] for c in COLUMNS)]
    table = pa.Table.from_arrays(
        [pa.array(v, type=f.type) for v, f in zip(columns, fields, strict=True)], schema=schema
    )
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    return out.getvalue().to_pybytes()


def rows_from_csv(data: bytes) -> list[LigandRow]:
    """The LigandRows of a CSV written by rows_to_csv (extra columns ignored, empty cells None).

    Raises ValueError naming the line when a row is not a LigandRow (a damaged table)."""
    reader = csv.DictReader(io.StringIO(data.decode()))
    missing = set(COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"the table lacks the columns {sorted(missing)}")
    rows = []
    for row in reader:
        try:
            values = {c: (None if row[c] == "" else float(row[c]) if c in FLOAT_COLUMNS else row[c]) for c in COLUMNS}
            rows.append(LigandRow.model_validate(values))
        except ValueError as e:  # a float column that is not a number; pydantic's ValidationError is a ValueError
            raise ValueError(f"line {reader.line_num}: {e}") from e
    return rows


def is_settled(row: LigandRow, affinity: bool) -> bool:
    """A row a re-run need not redo: failed (it has `error`), or with every figure the screen asks for."""
    if row.error:
        return True
    return row.confidence_score is not None and (not affinity or row.affinity_probability_binary is not None)


def read_json(path: Path) -> dict | None:
    """A JSON file boltz wrote, None when absent or not (yet) whole: boltz writes each with one write."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def ligand_row(
    ligand: dict, confidence: dict, affinity_values: dict | None, structure: str | None, ligand_index: int | None
) -> LigandRow:
    """The row of a ligand boltz predicted.

    ligand: {id, smiles, ccd}; confidence: its best model's confidence JSON; affinity_values: its affinity JSON (None
    for a structure-only screen); structure: the best model's file relative to the screen's results URI;
    ligand_index: the screened ligand's chain index in the structure when the target has other non-polymer chains
    (then `ligand_iptm` is the screened ligand's own, the best of its pairs in `pair_chains_iptm`), else None
    (boltz's `ligand_iptm`, over the one ligand chain)."""
    affinity_values = affinity_values or {}
    return LigandRow(
        id=ligand["id"],
        smiles=ligand.get("smiles"),
        ccd=ligand.get("ccd"),
        affinity_pred_value=_number(affinity_values.get("affinity_pred_value")),
        affinity_probability_binary=_number(affinity_values.get("affinity_probability_binary")),
        iptm=_number(confidence.get("iptm")),
        ligand_iptm=screened_ligand_iptm(confidence, ligand_index),
        complex_plddt=_number(confidence.get("complex_plddt")),
        confidence_score=_number(confidence.get("confidence_score")),
        structure=structure,
    )


def screened_ligand_iptm(confidence: dict, ligand_index: int | None) -> float | None:
    """boltz's `ligand_iptm`, or with `ligand_index` the best ipTM of that chain's pairs with the other chains."""
    if ligand_index is None:
        return _number(confidence.get("ligand_iptm"))
    pairs = confidence.get("pair_chains_iptm") or {}
    mine = pairs.get(str(ligand_index)) or {}
    values = [_number(v) for k, v in mine.items() if k != str(ligand_index)]
    found = [v for v in values if v is not None]
    return max(found) if found else _number(confidence.get("ligand_iptm"))


def failed_row(ligand: dict, reason: str) -> LigandRow:
    return LigandRow(id=ligand["id"], smiles=ligand.get("smiles"), ccd=ligand.get("ccd"), error=reason)


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

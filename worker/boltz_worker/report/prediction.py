"""The report of one BoltzPrediction: scores with boltz's own meaning of each, per-chain pLDDT, the PAE heatmap with
chain boundaries, and the best model in 3D coloured by pLDDT.

Everything comes from boltz's output directory (predictions/<record_id>/) and the PredictionResult the worker
builds from it, so the report of a finished run can be made again from its results alone.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import plotly.graph_objects as go

from boltz_contract import PredictionResult
from boltz_worker.report.arrays import ArrayError, read_npz
from boltz_worker.report.page import PLDDT_BANDS, Page, table
from boltz_worker.report.structure import Token, chain_spans, read_structure

log = logging.getLogger(__name__)

MAX_PAE_SIDE = 400  # a larger PAE matrix is averaged down to this many cells a side (N^2 cells cost page size)

# boltz 2.2.1's confidence and affinity keys and what boltz's documentation (docs/prediction.md) says they mean.
SCORE_MEANINGS = (
    ("confidence_score", "Boltz's ranking score: 0.8 x complex_plddt + 0.2 x iptm (ptm for a single chain), 0..1."),
    ("ptm", "Predicted TM-score of the whole complex, 0..1."),
    ("iptm", "Interface predicted TM-score: confidence in the chains' relative placement, 0..1."),
    ("ligand_iptm", "ipTM over the protein-ligand interfaces, 0..1."),
    ("protein_iptm", "ipTM over the protein-protein interfaces, 0..1."),
    ("complex_plddt", "Average per-token pLDDT of the complex (local confidence), 0..1."),
    ("complex_iplddt", "Average pLDDT weighted towards interface tokens, 0..1."),
    ("complex_pde", "Average predicted distance error between tokens, in Å (lower is better)."),
    ("complex_ipde", "Average predicted distance error at the interfaces, in Å (lower is better)."),
)
AFFINITY_MEANINGS = (
    (
        "affinity_pred_value",
        "Predicted affinity as log10(IC50) with IC50 in µM (lower binds tighter; -3 is 1 nM, 0 is 1 µM). Boltz "
        "advises it for ranking binders against each other (hit-to-lead, lead optimisation), not for telling "
        "binders from decoys.",
    ),
    (
        "affinity_probability_binary",
        "Probability that the ligand is a binder, 0..1: Boltz advises it for hit discovery (binders vs decoys).",
    ),
)


def prediction_report(directory: Path, result: PredictionResult, title: str | None = None) -> str:
    """The HTML report of a prediction whose outputs are in `directory` (boltz's predictions/<record_id>/).

    Parts that cannot be drawn (a structure without atoms, no PAE file) are left out with a note saying so; the
    report itself never fails on them. Raises OSError only when `directory` cannot be read at all.
    """
    record = result.record_id
    page = Page(
        title=title or f"Boltz-2 prediction {record}",
        subtitle=f"boltz {result.boltz_version or '?'} - worker {result.worker_version or '?'} - "
        f"finished {result.finished_at} - results {result.results_uri}",
    )
    best = result.confidence[0] if result.confidence else {}
    rows: list[list] = [[key, best.get(key), meaning] for key, meaning in SCORE_MEANINGS if key in best]
    if result.affinity:
        rows += [[k, result.affinity.get(k), m] for k, m in AFFINITY_MEANINGS if k in result.affinity]
        ic50 = result.affinity.get("affinity_pred_value")
        if isinstance(ic50, (int, float)):
            rows.append(["IC50 (from affinity_pred_value)", f"{10**ic50:.3g} µM", "10 ^ affinity_pred_value."])
    page.section("Scores of the best model", table(["score", "value", "meaning (boltz)"], rows))
    if len(result.confidence) > 1:
        keys = ("confidence_score", "ptm", "iptm", "complex_plddt")
        models = [[rank, *(conf.get(k) for k in keys)] for rank, conf in enumerate(result.confidence)]
        page.section("All models, by rank", table(["rank", *keys], models, sortable=True))

    structure = directory / result.structures[0] if result.structures else None
    model = read_structure(structure) if structure and structure.is_file() else None
    tokens = model.tokens if model else []
    if tokens:
        page.figure(
            "pLDDT per chain",
            plddt_figure(tokens),
            "plddt",
            note="Per token, from the best model (boltz writes pLDDT x 100 into each atom's B-factor): one point "
            "per residue of a polymer, one per atom of a ligand.",
        )
    else:
        page.section("pLDDT per chain", "", note="The best model's structure file holds no atoms to plot.")

    pae = _read_pae(directory, record)
    if pae is not None:
        page.figure(
            "Predicted aligned error (best model)",
            pae_figure(pae, tokens if len(tokens) == len(pae) else []),
            "pae",
            note="PAE(i, j): the expected position error, in Å, of token j when the model is aligned on token i. "
            "Low off-diagonal blocks mean confident relative placement of two chains. Lines mark chain boundaries.",
        )
    else:
        page.section("Predicted aligned error", "", note=f"boltz wrote no pae_{record}_model_0.npz.")

    if structure and model and tokens:
        fmt = "pdb" if structure.suffix == ".pdb" else "cif"
        how = "cartoon for polymers"
        if not model.cartoon_drawable:
            how = (
                f"spheres on the alpha carbons (consecutive ones are {model.median_ca_step:.0f} Å apart, not the "
                "3.8 Å of a protein backbone, so no cartoon can be drawn)"
            )
        page.structure_viewer(
            "Best model in 3D",
            structure.read_text(errors="replace"),
            fmt,
            "structure",
            cartoon=model.cartoon_drawable,
            sphere_radius=max(1.5, model.span / 60),
            note=f"{structure.name}: {how}, ball-and-stick for ligands, coloured by pLDDT. Drag to rotate, scroll "
            "to zoom.",
        )
    return page.render()


def plddt_figure(tokens: list[Token]) -> go.Figure:
    """One line per chain: pLDDT (0..100) against the residue number (ligands: atom order), bands shaded."""
    fig = go.Figure()
    for chain, start, end in chain_spans(tokens):
        part = tokens[start:end]
        ligand = all(t.ligand for t in part)
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(part) + 1)) if ligand else [t.residue for t in part],
                y=[round(t.plddt, 2) for t in part],
                mode="lines+markers" if ligand or len(part) < 30 else "lines",
                name=f"chain {chain}" + (" (ligand atoms)" if ligand else ""),
                text=[f"{t.name} {t.residue}" for t in part],
                hovertemplate="%{text}: pLDDT %{y}<extra>" + f"chain {chain}</extra>",
            )
        )
    bounds = [100, *(limit for limit, _ in PLDDT_BANDS)]
    for (limit, color), top in zip(PLDDT_BANDS, bounds[:-1], strict=True):
        fig.add_hrect(y0=limit, y1=top, fillcolor=color, opacity=0.12, line_width=0, layer="below")
    fig.update_layout(
        xaxis_title="residue (ligands: atom)", yaxis_title="pLDDT", yaxis_range=[0, 100], height=380,
        margin={"t": 20, "b": 40}, template="plotly_white",
    )  # fmt: skip
    return fig


def pae_figure(pae: list[list[float]], tokens: list[Token]) -> go.Figure:
    """The PAE matrix (Å) as a heatmap, averaged down to MAX_PAE_SIDE a side, with chain boundaries and labels."""
    n = len(pae)
    step = max(1, math.ceil(n / MAX_PAE_SIDE))
    z = _downsample(pae, step) if step > 1 else [[round(v, 2) for v in row] for row in pae]
    fig = go.Figure(
        go.Heatmap(
            z=z, x0=0, dx=step, y0=0, dy=step, colorscale="Greens_r", zmin=0, zmax=32,
            colorbar={"title": {"text": "Å"}},
            hovertemplate="aligned on %{y}, token %{x}: %{z} Å<extra></extra>",
        )
    )  # fmt: skip
    spans = chain_spans(tokens) if tokens else []
    for _, start, _end in spans[1:]:
        for axis in ("x", "y"):
            line = {"x0": start - 0.5, "x1": start - 0.5, "y0": -0.5, "y1": n - 0.5}
            if axis == "y":
                line = {"x0": -0.5, "x1": n - 0.5, "y0": start - 0.5, "y1": start - 0.5}
            fig.add_shape(type="line", line={"color": "black", "width": 1}, **line)
    ticks = {"tickvals": [(s + e - 1) / 2 for _, s, e in spans], "ticktext": [c for c, _, _ in spans]}
    axis_layout = {"title": "token (chain)", **ticks} if spans else {"title": "token"}
    fig.update_layout(
        xaxis=axis_layout, yaxis={**axis_layout, "autorange": "reversed", "scaleanchor": "x"}, height=560, width=620,
        margin={"t": 20}, template="plotly_white",
    )  # fmt: skip
    return fig


def _downsample(matrix: list[list[float]], step: int) -> list[list[float]]:
    n = len(matrix)
    out = []
    for i in range(0, n, step):
        row = []
        for j in range(0, n, step):
            block = [matrix[a][b] for a in range(i, min(i + step, n)) for b in range(j, min(j + step, n))]
            row.append(round(sum(block) / len(block), 2))
        out.append(row)
    return out


def _read_pae(directory: Path, record: str) -> list[list[float]] | None:
    path = directory / f"pae_{record}_model_0.npz"
    if not path.is_file():
        return None
    try:
        array = read_npz(path, "pae")
        return array.rows()
    except (ArrayError, OSError) as e:
        log.warning("cannot read %s for the report: %s", path.name, e)
        return None

"""The report of one BoltzScreen's rank step: the ranked ligands in a sortable table linked to their structures, the
affinity distribution (or, for a structure-only screen, the ligand ipTM's), and affinity against ipTM.

Made from the ranked rows screen-rank writes to ranked.csv (the figures are boltz's own; boltz_worker.screen_runs
.table says what each means), so it can be made again from the screen's results alone.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from boltz_contract.screen import LigandRow
from boltz_worker.report.page import Page, table

TABLE_ROWS = 500  # ligands shown in the table (the page stays light); ranked.csv and ranked.parquet hold every one
FAILED_ROWS = 200  # failed ligands listed with their reason


def screen_report(ranked: list[tuple[int, LigandRow]], affinity: bool, title: str, facts: list[tuple[str, object]],
                  top_k: int) -> str:  # fmt: skip
    """The HTML report of a screen. ranked: (rank, row) best first, failed rows last (screen_runs.ranking.rank_rows);
    affinity: whether the screen predicted affinity; facts: (label, value) pairs for the summary; top_k: the rows
    highlighted as the screen's top (status.results.topLigands). Structure links are relative to the results URI,
    where the report is written. Never raises on missing figures."""
    page = Page(title=title, subtitle="BoltzScreen: one target against a ligand library, ranked by boltz's figures")
    page.section("Summary", table(["", "value"], [[label, value] for label, value in facts]))
    done = [(rank, row) for rank, row in ranked if not row.error]
    failed = [row for _, row in ranked if row.error]
    order = (
        "affinity_probability_binary (highest first), then affinity_pred_value (lowest first)"
        if affinity
        else "ligand_iptm, then iptm (highest first)"
    )
    headers = ["rank", "ligand", "SMILES / CCD"]
    headers += ["P(binder)", "affinity log10(IC50/µM)"] if affinity else []
    headers += ["ipTM", "ligand ipTM", "confidence"]
    rows = []
    for position, (rank, row) in enumerate(done[:TABLE_ROWS]):
        name = html.escape(row.id)
        if row.structure:
            name = f'<a href="{html.escape(row.structure, quote=True)}">{name}</a>'
        if position < top_k:
            name = f"<strong>{name}</strong>"
        chemistry = html.escape(row.smiles or (f"CCD {row.ccd}" if row.ccd else ""))
        figures = [row.affinity_probability_binary, row.affinity_pred_value] if affinity else []
        rows.append([rank, name, f'<code class="seq">{chemistry}</code>', *figures, row.iptm, row.ligand_iptm,
                     row.confidence_score])  # fmt: skip
    shown = f"the best {TABLE_ROWS} of {len(done)}" if len(done) > TABLE_ROWS else f"all {len(done)}"
    page.section(
        f"Ranked ligands ({shown})",
        table(headers, rows, sortable=True, raw_columns=frozenset({1, 2})),
        note=f"Ranked by {order}. The top {top_k} are in bold; names link to the best model's structure. Click a "
        "header to sort. Every ligand is in ranked.csv (and ranked.parquet).",
    )
    if done:
        page.figure("Distributions", distributions_figure([r for _, r in done], affinity), "distributions")
        page.figure(
            "Affinity against ipTM" if affinity else "Ligand ipTM against confidence",
            scatter_figure(done, affinity, top_k),
            "scatter",
            note="Hover for the ligand; the top ligands in colour.",
        )
    if failed:
        listed = [[row.id, row.error] for row in failed[:FAILED_ROWS]]
        page.section(f"Failed ligands ({len(failed)})", table(["ligand", "why"], listed, sortable=True))
    return page.render()


def distributions_figure(rows: list[LigandRow], affinity: bool) -> go.Figure:
    """Histograms of the figures the screen ranks by: affinity value and probability, or ligand ipTM and ipTM."""
    fields = (
        (("affinity_pred_value", "affinity log10(IC50/µM)"), ("affinity_probability_binary", "P(binder)"))
        if affinity
        else (("ligand_iptm", "ligand ipTM"), ("iptm", "ipTM"))
    )
    fig = make_subplots(rows=1, cols=2, subplot_titles=[label for _, label in fields])
    for col, (name, label) in enumerate(fields, start=1):
        values = [v for r in rows if (v := getattr(r, name)) is not None]
        fig.add_trace(go.Histogram(x=values, name=label, marker_color="#1f77b4", showlegend=False), row=1, col=col)
    fig.update_layout(height=320, template="plotly_white", margin={"t": 40})
    return fig


def scatter_figure(done: list[tuple[int, LigandRow]], affinity: bool, top_k: int) -> go.Figure:
    """Affinity value against ipTM (affinity screens) or ligand ipTM against confidence; the top k highlighted."""
    x_name, y_name = ("iptm", "affinity_pred_value") if affinity else ("confidence_score", "ligand_iptm")
    labels = {"iptm": "ipTM", "affinity_pred_value": "affinity log10(IC50/µM)", "confidence_score": "confidence",
              "ligand_iptm": "ligand ipTM"}  # fmt: skip
    fig = go.Figure()
    for label, part, color in (("other ligands", done[top_k:], "#9e9e9e"), (f"top {top_k}", done[:top_k], "#d62728")):
        points = [(r.id, getattr(r, x_name), getattr(r, y_name), rank) for rank, r in part]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        fig.add_trace(
            go.Scatter(
                x=[p[1] for p in points], y=[p[2] for p in points], mode="markers", name=label,
                text=[f"#{p[3]} {p[0]}" for p in points], marker={"color": color, "size": 7},
                hovertemplate="%{text}<br>%{x}, %{y}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(xaxis_title=labels[x_name], yaxis_title=labels[y_name], height=420, template="plotly_white")
    return fig

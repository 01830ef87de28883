"""The report of one BoltzGenCampaign's filter: the selected designs in a sortable table linked to their structures,
and the distributions of the key metrics over every merged design, the selected ones overlaid.

Made from the filter's CSVs (boltzgen's all_designs_metrics.csv and final_designs_metrics_<budget>.csv), so it can be
made again from the campaign's results alone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from boltz_worker.report.page import Page, table

SEQUENCE_SHOWN = 60  # characters of a designed sequence shown in the table (the full one in its tooltip)

# What boltzgen's metrics mean, for the column headers' tooltips and the plots' titles.
METRIC_LABELS = {
    "design_to_target_iptm": "ipTM design-target",
    "design_iptm": "ipTM of the design",
    "design_ptm": "pTM of the design",
    "min_design_to_target_pae": "min PAE design-target (Å)",
    "min_interaction_pae": "min interaction PAE (Å)",
    "filter_rmsd": "refolding RMSD (Å)",
    "affinity_probability_binary1": "affinity: P(binder)",
    "quality_score": "boltzgen quality score",
}


def campaign_report(
    selected: list[dict[str, str]],
    all_designs: list[dict[str, str]],
    metric_groups: Sequence[Sequence[str]],
    structure_links: dict[str, str],
    title: str,
    facts: list[tuple[str, object]],
) -> str:
    """The HTML report of a campaign's filter.

    selected: the final designs' rows (final_designs_metrics_<budget>.csv); all_designs: every design boltzgen's
    filter ranked (all_designs_metrics.csv; may be empty); metric_groups: the metrics to show, the first present
    name of each group (boltzgen's own fallbacks); structure_links: design id -> relative URL of its structure;
    facts: (label, value) pairs for the summary table. Never raises on missing or non-numeric metrics.
    """
    page = Page(title=title, subtitle="BoltzGen campaign: designs selected by boltzgen's filter")
    page.section("Summary", table(["", "value"], [[label, value] for label, value in facts]))
    rows = selected or all_designs
    metrics = [name for group in metric_groups if (name := _first_present(group, rows))]

    ordered = sorted(selected, key=lambda r: _number(r.get("final_rank")) or math.inf)
    body = []
    for row in ordered:
        design = row.get("id", "")
        link = structure_links.get(design)
        id_html = (
            f'<a href="{html.escape(link, quote=True)}">{html.escape(design)}</a>' if link else html.escape(design)
        )
        sequence = row.get("designed_sequence") or row.get("designed_chain_sequence") or ""
        shown = sequence if len(sequence) <= SEQUENCE_SHOWN else sequence[:SEQUENCE_SHOWN] + "..."
        seq_html = f'<code class="seq" title="{html.escape(sequence, quote=True)}">{html.escape(shown)}</code>'
        rank = _number(row.get("final_rank"))
        body.append(
            [int(rank) if rank is not None else None, id_html, seq_html, *(_number(row.get(m)) for m in metrics)]
        )
    headers = ["rank", "design", "sequence", *(METRIC_LABELS.get(m, m) for m in metrics)]
    page.section(
        f"Selected designs ({len(selected)})",
        table(headers, body, sortable=True, raw_columns=frozenset({1, 2})),
        note="Click a column header to sort. Links open the design's refolded structure.",
    )
    if all_designs and metrics:
        page.figure(
            "Metric distributions",
            distributions_figure(all_designs, selected, metrics),
            "distributions",
            note=f"Every merged design ({len(all_designs)}) in grey, the selected ones in colour.",
        )
        x, y = _scatter_axes(metrics)
        if x and y:
            page.figure(
                f"{METRIC_LABELS.get(x, x)} against {METRIC_LABELS.get(y, y)}",
                scatter_figure(all_designs, selected, x, y),
                "scatter",
            )
    return page.render()


def distributions_figure(all_designs: list[dict], selected: list[dict], metrics: list[str]) -> go.Figure:
    """One histogram per metric: all designs, and the selected designs overlaid."""
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics])
    for i, metric in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        for label, source, color in (("all designs", all_designs, "#9e9e9e"), ("selected", selected, "#1f77b4")):
            fig.add_trace(
                go.Histogram(
                    x=_values(source, metric), name=label, marker_color=color, opacity=0.75,
                    legendgroup=label, showlegend=i == 0,
                ),
                row=r, col=c,
            )  # fmt: skip
    fig.update_layout(barmode="overlay", height=300 * rows, template="plotly_white", margin={"t": 40})
    return fig


def scatter_figure(all_designs: list[dict], selected: list[dict], x: str, y: str) -> go.Figure:
    """Every design as a point (x, y), the selected ones highlighted; hover shows the design id."""
    chosen = {row.get("id") for row in selected}
    fig = go.Figure()
    for label, rows, color in (
        ("other designs", [r for r in all_designs if r.get("id") not in chosen], "#9e9e9e"),
        ("selected", [r for r in all_designs if r.get("id") in chosen] or selected, "#1f77b4"),
    ):
        points = [(r.get("id", ""), _number(r.get(x)), _number(r.get(y))) for r in rows]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        fig.add_trace(
            go.Scatter(
                x=[p[1] for p in points], y=[p[2] for p in points], text=[p[0] for p in points], mode="markers",
                name=label, marker={"color": color, "size": 7}, hovertemplate="%{text}<br>%{x}, %{y}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        xaxis_title=METRIC_LABELS.get(x, x), yaxis_title=METRIC_LABELS.get(y, y), height=420, template="plotly_white"
    )
    return fig


def _scatter_axes(metrics: list[str]) -> tuple[str | None, str | None]:
    x = next((m for m in metrics if "iptm" in m), None)
    y = next((m for m in metrics if m != x and ("pae" in m or "rmsd" in m)), None)
    return x, y


def _first_present(group: Sequence[str], rows: list[dict[str, str]]) -> str | None:
    return next((name for name in group if any(_number(r.get(name)) is not None for r in rows)), None)


def _values(rows: list[dict[str, str]], metric: str) -> list[float]:
    return [v for r in rows if (v := _number(r.get(metric))) is not None]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

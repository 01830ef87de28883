"""One self-contained HTML page: sections of tables, plotly figures and a 3Dmol.js viewer, every script inlined.

Nothing is fetched when the page is opened (no CDN, no fonts, no MathJax): plotly.js comes from the pinned plotly
wheel, 3Dmol.js from vendor/ (see vendor/README.md). Each script is inlined once, however many figures use it.
The page sets `document.body.dataset.ready` when every figure and viewer has been drawn, and lists what failed to
draw in `data-errors`, so a browser test (or a person's console) can tell.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from boltz_worker.report.vendored import three_dmol_js

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png"}}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.sub { color: #666; margin-top: 0; } .note { color: #555; font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; } table.sortable th:after { content: " \\2195"; color: #aaa; }
.viewer { width: 100%; height: 520px; position: relative; border: 1px solid #ddd; }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .3rem; color: #fff; font-size: .85rem; }
code.seq { word-break: break-all; font-size: .8rem; }
"""

# Click a header to sort by that column (numbers numerically, empty cells last). Not charting: a table helper.
_SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows), asc = th.dataset.dir !== 'asc';
      var key = function (r) { var t = r.cells[col].dataset.v || r.cells[col].textContent.trim();
        var n = parseFloat(t); return isNaN(n) ? t : n; };
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (x === '' || x === '-') return 1; if (y === '' || y === '-') return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
      table.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? 'asc' : 'desc';
    });
  });
});
"""

# Waits for every plot (plotly's own promise per figure) and every viewer, then marks the page ready.
_READY_JS = """
(function () {
  var errors = [];
  var plots = Array.from(document.querySelectorAll('.js-plotly-plot, .plotly-graph-div'));
  var waits = (window.boltzReportPending || []).concat(plots.map(function (p) {
    return new Promise(function (ok) { var t = 0; (function poll() {
      if (p.querySelector('.main-svg') || ++t > 200) { ok(); } else { setTimeout(poll, 50); } })(); });
  }));
  Promise.all(waits.map(function (w) { return Promise.resolve(w).catch(function (e) { errors.push(String(e)); }); }))
    .then(function () { document.body.dataset.errors = errors.join('; '); document.body.dataset.ready = 'true'; });
})();
"""


@dataclass
class Page:
    """An HTML report under construction: add sections in order, then `render()`."""

    title: str
    subtitle: str = ""
    parts: list[str] = field(default_factory=list)
    uses_3dmol: bool = False

    def section(self, heading: str, body_html: str, note: str = "") -> None:
        """A titled section; `body_html` must already be escaped (see `table`)."""
        note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
        self.parts.append(f"<section><h2>{html.escape(heading)}</h2>{note_html}{body_html}</section>")

    def figure(self, heading: str, fig: go.Figure, div_id: str, note: str = "") -> None:
        """A section holding one plotly figure (plotly.js itself is inlined once by render)."""
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG)
        self.section(heading, div, note)

    def structure_viewer(
        self,
        heading: str,
        structure_text: str,
        fmt: str,
        div_id: str,
        note: str = "",
        cartoon: bool = True,
        sphere_radius: float = 1.5,
    ) -> None:
        """A 3Dmol.js viewer of one model coloured by the pLDDT in its B-factors: polymers as a cartoon (or, with
        cartoon=False, spheres of `sphere_radius` Å on the alpha carbons), ligands as balls and sticks.

        fmt: "cif" or "pdb". The structure is embedded as JSON text, so any file content is safe inside the page.
        """
        self.uses_3dmol = True
        options = {"text": structure_text, "format": fmt, "cartoon": cartoon, "radius": sphere_radius}
        data = json.dumps(options).replace("</", "<\\/")
        legend = "".join(f'<span style="background:{color}">{label}</span>' for label, color in PLDDT_BANDS_LEGEND)
        body = (
            f'<div class="legend">pLDDT: {legend}</div><div id="{div_id}" class="viewer"></div>'
            f"<script>(window.boltzReportPending = window.boltzReportPending || []).push("
            f"boltzShowStructure({json.dumps(div_id)}, {data}));</script>"
        )
        self.section(heading, body, note)

    def render(self) -> str:
        """The whole page as a string (UTF-8 when written)."""
        scripts = [f"<script>{get_plotlyjs()}</script>"]
        if self.uses_3dmol:
            scripts.append(f"<script>{three_dmol_js()}</script><script>{_VIEWER_JS}</script>")
        sub = f'<p class="sub">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
            f"{''.join(scripts)}</head><body><h1>{html.escape(self.title)}</h1>{sub}"
            f"{''.join(self.parts)}<script>{_SORT_JS}</script><script>{_READY_JS}</script></body></html>\n"
        )


# AlphaFold's pLDDT bands, the colours structure biologists read at a glance.
PLDDT_BANDS = ((90, "#0053D6"), (70, "#65CBF3"), (50, "#FFDB13"), (0, "#FF7D45"))
PLDDT_BANDS_LEGEND = (("> 90", "#0053D6"), ("70-90", "#65CBF3"), ("50-70", "#FFDB13"), ("< 50", "#FF7D45"))

_VIEWER_JS = (
    "function boltzPlddtColor(atom) { var b = atom.b; "
    + " ".join(f"if (b > {limit}) return '{color}';" for limit, color in PLDDT_BANDS[:-1])
    + f" return '{PLDDT_BANDS[-1][1]}'; }}"
    + """
function boltzShowStructure(id, data) {
  return new Promise(function (ok, fail) {
    try {
      var el = document.getElementById(id);
      var viewer = $3Dmol.createViewer(el, {backgroundColor: 'white', antialias: true});
      viewer.addModel(data.text, data.format);
      if (data.cartoon) {
        viewer.setStyle({}, {cartoon: {colorfunc: boltzPlddtColor}});
      } else {
        viewer.setStyle({}, {});
        viewer.setStyle({atom: 'CA'}, {sphere: {colorfunc: boltzPlddtColor, radius: data.radius}});
      }
      viewer.setStyle({hetflag: true}, {stick: {colorfunc: boltzPlddtColor, radius: 0.25},
                                        sphere: {colorfunc: boltzPlddtColor, radius: data.radius / 3}});
      viewer.zoomTo();
      viewer.render(function () { el.dataset.rendered = 'true'; ok(); });
      window.boltzViewers = (window.boltzViewers || []).concat([viewer]);
    } catch (e) { fail(e); }
  });
}
"""
)


def table(
    headers: list[str], rows: list[list[Any]], sortable: bool = False, raw_columns: frozenset = frozenset()
) -> str:
    """An HTML table; cells are escaped except in `raw_columns` (indices of cells holding prepared HTML).

    Numbers are right-aligned and shown with 4 significant decimals; None shows as "-".
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            if i in raw_columns:
                cells.append(f"<td>{value}</td>")
            elif isinstance(value, float):
                cells.append(f'<td class="num" data-v="{value!r}">{value:.4g}</td>')
            elif isinstance(value, int) and not isinstance(value, bool):
                cells.append(f'<td class="num">{value}</td>')
            else:
                cells.append(f"<td>{'-' if value is None else html.escape(str(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    cls = ' class="sortable"' if sortable else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

"""The HTML reports opened as a person opens them: a real headless Chromium, from a file:// URL, with no network.

Each page must draw every plot (plotly's SVG, with data), draw the 3D view (pixels of the pLDDT colours in a
screenshot of its canvas), log no console error or exception, and request nothing that is not local. The first
tests show that the harness sees each of those failures, so the later ones can fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from boltz_contract import PredictionResult
from boltz_worker.report.campaign import campaign_report
from boltz_worker.report.page import Page
from boltz_worker.report.prediction import prediction_report
from boltz_worker.report.screen import screen_report
from support.browser import Chromium
from support.report import (
    assert_clean,
    assert_plots_drawn,
    campaign_rows,
    canvas,
    open_report,
    plddt_coloured,
    screen_rows,
)

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "report" / "egfr-erlotinib"
PROTEIN = REPO / "tests" / "fixtures" / "structures" / "3ch4.cif"


# ---------------------------------------------------------------------------------------------- the harness


def test_the_harness_sees_console_errors_exceptions_and_remote_requests(browser, tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='http://192.0.2.1/x.png'><script>console.error('boom');"
        "window.fetched = fetch('https://192.0.2.1/').then(function () { return 'fetched'; },"
        " function () { return 'refused'; }); setTimeout(function () { throw new Error('late'); }, 0);"
        "</script></body></html>"
    )
    browser.open(page.as_uri())
    assert browser.evaluate("window.fetched") == "refused"  # the browser really has no network
    browser.wait_for("true")
    assert "boom" in " ".join(browser.log.console_errors)
    assert any("late" in e for e in browser.log.exceptions)
    assert {"http://192.0.2.1/x.png", "https://192.0.2.1/"} <= set(browser.log.remote_requests)


def test_the_pixel_check_sees_a_blank_viewer(browser, tmp_path):
    """A model whose only atoms are not alpha carbons, drawn as CA spheres: the viewer renders, nothing shows."""
    atoms = "".join(
        f"ATOM  {i:>5}  N   GLY A{i:>4}    {i * 3.8:8.3f}{0.0:8.3f}{0.0:8.3f}  1.00 90.00           N\n"
        for i in range(1, 6)
    )
    report = Page(title="nothing to draw")
    report.structure_viewer("no CA atoms", atoms + "END\n", "pdb", "structure", cartoon=False)
    (tmp_path / "empty.html").write_text(report.render())
    open_report(browser, tmp_path / "empty.html")
    assert canvas(browser, "structure").fraction(plddt_coloured) == 0


# ---------------------------------------------------------------------------------------------- the reports


def test_prediction_report_of_real_boltz_output(browser, tmp_path):
    """The example prediction as the real boltz 2.2.1 wrote it (random weights: spheres on the CA atoms)."""
    result = PredictionResult.model_validate_json((FIXTURE / "result.json").read_text())
    (tmp_path / "report.html").write_text(prediction_report(FIXTURE, result))
    open_report(browser, tmp_path / "report.html")
    assert_plots_drawn(browser, "plddt", "pae")
    assert browser.evaluate("document.getElementById('plddt').data.map(t => t.name)") == [
        "chain A",
        "chain B (ligand atoms)",
    ]
    assert browser.evaluate("document.getElementById('pae').layout.shapes.length") == 2  # one boundary, two axes
    assert canvas(browser, "structure").fraction(plddt_coloured) > 0.002
    assert_clean(browser)


def test_prediction_report_of_a_real_protein_draws_a_cartoon(browser, tmp_path):
    """A deposited protein structure (3CH4): its backbone is a cartoon, coloured by the B-factor column."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copyfile(PROTEIN, out / "pmk_model_0.cif")
    confidence = json.loads((FIXTURE / "confidence_egfr-erlotinib_model_0.json").read_text())
    result = PredictionResult(
        record_id="pmk", results_uri="pvc://r/pmk", files=[], structures=["pmk_model_0.cif"],
        confidence=[confidence], started_at="2026-11-30T00:00:00Z", finished_at="2026-11-30T00:01:00Z",
    )  # fmt: skip
    page = prediction_report(out, result)
    assert "cartoon for polymers" in page
    (tmp_path / "report.html").write_text(page)
    open_report(browser, tmp_path / "report.html")
    assert_plots_drawn(browser, "plddt")
    assert canvas(browser, "structure").fraction(plddt_coloured) > 0.02
    assert_clean(browser)


def test_campaign_report_plots_and_sorts(browser, tmp_path):
    selected, everything = campaign_rows(selected=8, total=60)
    groups = (("design_to_target_iptm",), ("filter_rmsd",), ("min_design_to_target_pae",))
    (tmp_path / "report.html").write_text(campaign_report(selected, everything, groups, {}, "campaign", []))
    open_report(browser, tmp_path / "report.html")
    assert_plots_drawn(browser, "distributions", "scatter")
    assert browser.evaluate("document.getElementById('distributions').data.length") == 6  # 3 metrics x 2
    column = "Array.from(document.querySelectorAll('table.sortable tbody tr')).map(r => r.cells[%d].textContent)"
    assert browser.evaluate(column % 0) == [str(i) for i in range(1, 9)]
    rmsd_header = "document.querySelectorAll('table.sortable th')[4]"
    browser.evaluate(f"{rmsd_header}.click()")
    ascending = [float(v) for v in browser.evaluate(column % 4)]
    assert ascending == sorted(ascending) and ascending != [float(r["filter_rmsd"]) for r in selected]
    browser.evaluate(f"{rmsd_header}.click()")
    assert [float(v) for v in browser.evaluate(column % 4)] == sorted(ascending, reverse=True)
    assert_clean(browser)


def test_prediction_report_on_a_narrow_window_still_draws(chromium_path, tmp_path):
    result = PredictionResult.model_validate_json((FIXTURE / "result.json").read_text())
    (tmp_path / "report.html").write_text(prediction_report(FIXTURE, result))
    with Chromium(chromium_path, tmp_path / "profile", width=420, height=900) as browser:
        open_report(browser, tmp_path / "report.html")
        assert_plots_drawn(browser, "plddt", "pae")
        assert canvas(browser, "structure").fraction(plddt_coloured) > 0.002
        assert_clean(browser)


def test_screen_report_plots_and_sorts(browser, tmp_path):
    (tmp_path / "report.html").write_text(screen_report(screen_rows(60, failed=3), True, "screen", [], top_k=10))
    open_report(browser, tmp_path / "report.html")
    assert_plots_drawn(browser, "distributions", "scatter")
    assert browser.evaluate("document.getElementById('scatter').data.map(t => t.x.length)") == [50, 10]
    table = "document.querySelectorAll('table.sortable')[0]"
    column = f"Array.from({table}.tBodies[0].rows).map(r => r.cells[%d].textContent)"
    by_rank = [int(v) for v in browser.evaluate(column % 0)]
    assert by_rank == sorted(by_rank)
    browser.evaluate(f"{table}.querySelectorAll('th')[4].click()")  # affinity log10(IC50), ascending
    values = [float(v) for v in browser.evaluate(column % 4)]
    assert values == sorted(values)
    assert_clean(browser)

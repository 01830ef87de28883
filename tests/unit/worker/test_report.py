"""The HTML reports, without a browser: what they are made from and what they hold (tests/integration/report opens
them in Chromium).

tests/fixtures/report/egfr-erlotinib/ is what the real boltz 2.2.1 wrote in the fidelity run of the example
prediction (random small weights: the scores are meaningless, the files and their layout are boltz's own).
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from boltz_contract import PredictionResult
from boltz_worker.boltz_runs.boltz_outputs import find_outputs
from boltz_worker.boltz_runs.predict import upload_report
from boltz_worker.report import vendored
from boltz_worker.report.arrays import ArrayError, parse_npy, read_npz
from boltz_worker.report.campaign import campaign_report
from boltz_worker.report.prediction import MAX_PAE_SIDE, pae_figure, prediction_report
from boltz_worker.report.screen import TABLE_ROWS, screen_report
from boltz_worker.report.structure import Token, chain_spans, read_structure, read_tokens
from boltz_worker.results.results_store import LocalDirResultsStore
from support.report import campaign_rows, screen_rows, write_npz

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "report" / "egfr-erlotinib"
PROTEIN = REPO / "tests" / "fixtures" / "structures" / "3ch4.cif"
RECORD = "egfr-erlotinib"


def fixture_result() -> PredictionResult:
    return PredictionResult.model_validate_json((FIXTURE / "result.json").read_text())


# ---------------------------------------------------------------------------------------------- vendored script


def test_the_vendored_3dmol_is_the_recorded_one():
    data = (vendored.VENDOR_DIR / vendored.THREE_DMOL).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vendored.THREE_DMOL_SHA256
    readme = (vendored.VENDOR_DIR / "README.md").read_text()
    assert vendored.THREE_DMOL_SHA256 in readme and vendored.THREE_DMOL_VERSION in readme
    assert f"v{vendored.THREE_DMOL_VERSION}" in (vendored.VENDOR_DIR / "3Dmol-min.js.LICENSE.txt").read_text()
    assert "BSD" in (vendored.VENDOR_DIR / "3Dmol-LICENSE").read_text()


def test_a_changed_vendored_script_is_refused(tmp_path, monkeypatch):
    (tmp_path / vendored.THREE_DMOL).write_text("console.log('not 3Dmol')")
    monkeypatch.setattr(vendored, "VENDOR_DIR", tmp_path)
    vendored.three_dmol_js.cache_clear()
    try:
        with pytest.raises(vendored.VendoredFileError, match="not the recorded"):
            vendored.three_dmol_js()
    finally:
        vendored.three_dmol_js.cache_clear()


# ---------------------------------------------------------------------------------------------- boltz's files


def test_tokens_of_boltz_structure_match_its_plddt_and_pae_arrays():
    """The token order read from the CIF is boltz's: same count as its arrays, same pLDDT (x 100) per token."""
    tokens = read_tokens(FIXTURE / f"{RECORD}_model_0.cif")
    plddt = read_npz(FIXTURE / f"plddt_{RECORD}_model_0.npz", "plddt")
    pae = read_npz(FIXTURE / f"pae_{RECORD}_model_0.npz", "pae")
    assert plddt.shape == (len(tokens),) and pae.shape == (len(tokens), len(tokens))
    assert [round(t.plddt, 1) for t in tokens] == [round(v * 100, 1) for v in plddt.values]
    spans = chain_spans(tokens)
    assert [c for c, _, _ in spans] == ["A", "B"]
    assert not any(t.ligand for t in tokens[: spans[0][2]]) and all(t.ligand for t in tokens[spans[1][1] :])


def test_a_real_protein_backbone_is_drawable_as_a_cartoon_and_a_random_one_is_not():
    protein = read_structure(PROTEIN)
    assert protein.cartoon_drawable and 3.7 < protein.median_ca_step < 3.9
    assert not read_structure(FIXTURE / f"{RECORD}_model_0.cif").cartoon_drawable  # random weights


def test_pdb_files_give_the_same_tokens_as_boltz_indexes_them(tmp_path):
    pdb = tmp_path / "m.pdb"
    lines = [
        _pdb_line("ATOM", 1, "N", "GLY", "A", 1, 80.0), _pdb_line("ATOM", 2, "CA", "GLY", "A", 1, 80.0),
        _pdb_line("ATOM", 3, "CA", "ALA", "A", 2, 60.0), _pdb_line("HETATM", 4, "C1", "LIG", "B", 1, 40.0),
        _pdb_line("HETATM", 5, "C2", "LIG", "B", 1, 45.0),
    ]  # fmt: skip
    pdb.write_text("\n".join(lines) + "\nEND\n")
    tokens = read_tokens(pdb)
    assert [(t.chain, t.residue, t.plddt, t.ligand) for t in tokens] == [
        ("A", 1, 80.0, False), ("A", 2, 60.0, False), ("B", 1, 40.0, True), ("B", 1, 45.0, True),
    ]  # fmt: skip


def _pdb_line(record, serial, atom, residue, chain, number, b):
    return f"{record:<6}{serial:>5} {atom:<4} {residue:>3} {chain}{number:>4}    {1.0:8.3f}{2.0:8.3f}{3.0:8.3f}{1.0:6.2f}{b:6.2f}"


def test_npy_reader_reads_what_numpy_writes_and_refuses_what_it_cannot(tmp_path):
    path = write_npz(tmp_path / "a.npz", "pae", [[1.0, 2.5], [3.0, 4.0]])
    assert read_npz(path, "pae").rows() == [[1.0, 2.5], [3.0, 4.0]]
    with pytest.raises(ArrayError, match="no array"):
        read_npz(path, "plddt")
    with pytest.raises(ArrayError, match="not an .npy"):
        parse_npy(b"garbage")
    header = "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }"
    with pytest.raises(ArrayError, match="dtype <c16"):
        parse_npy(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(16))


# ---------------------------------------------------------------------------------------------- prediction report


def test_the_prediction_report_of_a_real_boltz_output():
    result = fixture_result()
    page = prediction_report(FIXTURE, result)
    best = result.confidence[0]
    for key in ("confidence_score", "ptm", "iptm", "complex_plddt", "affinity_pred_value"):
        assert key in page
    assert f"{best['confidence_score']:.4g}" in page
    assert f"{result.affinity['affinity_probability_binary']:.4g}" in page
    assert "0.8 x complex_plddt + 0.2 x iptm" in page and "log10(IC50)" in page  # boltz's meaning of each
    for div in ('id="plddt"', 'id="pae"', 'id="structure"'):
        assert div in page
    assert "spheres on the alpha carbons" in page  # the random model's CA trace cannot be a cartoon


class _Elements(HTMLParser):
    """The elements of a page as a browser's tokenizer sees them (script content is text up to `</script`)."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_report_is_self_contained():
    """No element loads anything (the browser test also checks that no script fetches anything)."""
    page = prediction_report(FIXTURE, fixture_result())
    elements = _Elements(page).tags
    assert not [(tag, attrs) for tag, attrs in elements if "src" in attrs or (tag == "link" and "href" in attrs)]
    assert [tag for tag, _ in elements].count(
        "script"
    ) == 9  # config, plotly, 3Dmol, viewer, sort, ready + 2 plots, 1 viewer
    assert vendored.three_dmol_js()[:200] in page


def test_structure_text_cannot_close_the_script_it_is_embedded_in(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "out")
    cif = tmp_path / "out" / f"{RECORD}_model_0.cif"
    cif.write_text(cif.read_text().replace("data_", "# </script><script>alert(1)</script>\ndata_", 1))
    page = prediction_report(tmp_path / "out", fixture_result())
    assert "</script><script>alert(1)" not in page
    scripts = [tag for tag, _ in _Elements(page).tags if tag == "script"]
    assert len(scripts) == len(
        [t for t, _ in _Elements(prediction_report(FIXTURE, fixture_result())).tags if t == "script"]
    )


def test_parts_that_cannot_be_drawn_are_left_out_with_a_reason(tmp_path):
    (tmp_path / f"{RECORD}_model_0.cif").write_text("data_x\n#\n")  # no atoms, no PAE file
    page = prediction_report(tmp_path, fixture_result())
    assert "holds no atoms" in page and f"no pae_{RECORD}_model_0.npz" in page
    assert 'id="structure"' not in page and 'id="plddt"' not in page


def test_large_pae_matrices_are_averaged_down():
    n = 2 * MAX_PAE_SIDE + 10
    pae = [[float((i + j) % 30) for j in range(n)] for i in range(n)]
    tokens = [Token("A" if i < n // 2 else "B", i, "ALA", 50.0) for i in range(n)]
    heatmap = pae_figure(pae, tokens).data[0]
    assert len(heatmap.z) <= MAX_PAE_SIDE and heatmap.dx == 3
    assert heatmap.z[0][0] == pytest.approx(sum((i + j) % 30 for i in range(3) for j in range(3)) / 9)


def test_a_report_failure_never_fails_the_run(tmp_path, monkeypatch):
    store = LocalDirResultsStore("pvc://r/x", tmp_path / "results")
    outputs = find_outputs(tmp_path, RECORD)

    def broken(*_args, **_kwargs):
        raise ValueError("a bug in the report")

    monkeypatch.setattr("boltz_worker.report.prediction.prediction_report", broken)
    assert upload_report(store, outputs, fixture_result()) is None
    assert not (tmp_path / "results" / "report.html").exists()


# ---------------------------------------------------------------------------------------------- campaign report


def test_the_campaign_report_ranks_links_and_plots_the_designs():
    selected, everything = campaign_rows(selected=5, total=40)
    links = {row["id"]: f"final_ranked_designs/final_5_designs/rank{row['final_rank']}_{row['file_name']}"
             for row in selected}  # fmt: skip
    groups = (("design_to_target_iptm", "design_iptm"), ("filter_rmsd",), ("min_design_to_target_pae",))
    page = campaign_report(selected[::-1], everything, groups, links, "BoltzGen campaign demo", [("budget", 5)])
    ranks = [int(m) for m in re.findall(r'<tr><td class="num">(\d+)</td>', page)]
    assert ranks == [1, 2, 3, 4, 5]  # ordered by boltzgen's final_rank whatever the file order
    for link in links.values():
        assert f'href="{html.escape(link)}"' in page
    assert 'class="sortable"' in page and 'id="distributions"' in page and 'id="scatter"' in page
    assert "3Dmol" not in page[:2000] and "$3Dmol.createViewer" not in page  # no viewer: no 3Dmol inlined


def test_the_campaign_report_tolerates_missing_and_non_numeric_metrics():
    selected = [{"id": "d1", "final_rank": "1", "design_to_target_iptm": "nan", "filter_rmsd": "x"}]
    page = campaign_report(selected, [], (("design_to_target_iptm",), ("filter_rmsd",)), {}, "t", [])
    assert "d1" in page and 'id="distributions"' not in page


# ---------------------------------------------------------------------------------------------- screen report


def test_the_screen_report_ranks_links_and_plots_the_ligands():
    ranked = screen_rows(40, failed=2)
    page = screen_report(ranked, True, "BoltzScreen demo", [("ligands", 42)], top_k=5)
    ranks = [int(m) for m in re.findall(r'<tr><td class="num">(\d+)</td>', page)]
    assert ranks == sorted(ranks) and len(ranks) == 40  # the failed rows are in their own table
    best = ranked[0][1]
    assert f'<strong><a href="{best.structure}">{best.id}</a></strong>' in page
    assert "Failed ligands (2)" in page and "RDKit cannot parse" in page
    assert 'id="distributions"' in page and 'id="scatter"' in page and "affinity_probability_binary" in page


def test_a_large_screen_shows_its_best_rows_and_a_structure_only_screen_its_own_figures():
    page = screen_report(screen_rows(TABLE_ROWS + 20), True, "big", [], top_k=10)
    assert f"the best {TABLE_ROWS} of {TABLE_ROWS + 20}" in page
    page = screen_report(screen_rows(10), False, "structure only", [], top_k=3)
    assert "P(binder)" not in page and "ligand_iptm, then iptm" in page

"""The report tests' helpers: inputs (.npz arrays written without numpy, BoltzGen filter metric rows) and checks of
a report opened in Chromium (support.browser)."""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path

from boltz_worker.report.page import PLDDT_BANDS
from support.browser import Chromium, Image


def write_npz(path: Path, key: str, rows: list[list[float]]) -> Path:
    """A 2-D float32 array in an .npz, byte for byte as numpy.savez writes one (format 1.0)."""
    n, m = len(rows), len(rows[0])
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {m}), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = struct.pack(f"<{n * m}f", *(v for row in rows for v in row))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
    return path


def screen_rows(count: int, failed: int = 0) -> list:
    """(rank, LigandRow) of a screen ranked as screen-rank ranks it, figures spread deterministically."""
    from boltz_contract.screen import LigandRow
    from boltz_worker.screen_runs.ranking import rank_rows

    rows = [
        LigandRow(
            id=f"lig-{i:03d}",
            smiles="C" * (1 + i % 7) + "N",
            affinity_pred_value=round(-2 + 3 * abs(math.sin(i)), 3),
            affinity_probability_binary=round(abs(math.cos(i * 1.3)), 3),
            iptm=round(0.3 + 0.6 * abs(math.sin(i / 3)), 3),
            ligand_iptm=round(0.2 + 0.7 * abs(math.cos(i / 4)), 3),
            confidence_score=0.6,
            structure=f"shards/{i % 3}/predictions/lig-{i:03d}/lig-{i:03d}_model_0.cif",
        )
        for i in range(count)
    ] + [LigandRow(id=f"bad-{i}", smiles="C1CC", error="RDKit cannot parse the SMILES 'C1CC'") for i in range(failed)]
    return rank_rows(rows, affinity=True)


def campaign_rows(selected: int, total: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(selected rows, all rows) shaped like boltzgen's filter CSVs, metrics spread deterministically."""
    everything = []
    for i in range(total):
        everything.append(
            {
                "id": f"shard-{i % 4:05d}_design_{i}",
                "file_name": f"design_{i}.cif",
                "designed_sequence": "GS" + "ACDEFGHIKLMNPQRSTVWY"[i % 20] * (30 + i % 50),
                "design_to_target_iptm": f"{0.3 + 0.6 * abs(math.sin(i)):.4f}",
                "filter_rmsd": f"{0.5 + 3 * abs(math.cos(3 * i)):.4f}",
                "min_design_to_target_pae": f"{2 + 10 * abs(math.sin(2 * i)):.4f}",
            }
        )
    best = sorted(everything, key=lambda r: -float(r["design_to_target_iptm"]))[:selected]
    chosen = [{**row, "final_rank": str(rank)} for rank, row in enumerate(best, start=1)]
    return chosen, everything


# ---------------------------------------------------------------------------------------------- in a browser

READY = "document.body.dataset.ready === 'true'"
BAND_COLOURS = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for _, c in PLDDT_BANDS]


def plddt_coloured(pixel: tuple[int, int, int]) -> bool:
    """Whether a pixel is one of the pLDDT colours, allowing for the viewer's shading (darker, not other hues)."""
    for colour in BAND_COLOURS:
        scale = max(pixel) / max(colour)
        if 0.25 < scale <= 1.05 and all(abs(p - c * scale) < 40 for p, c in zip(pixel, colour, strict=True)):
            return True
    return False


def open_report(browser: Chromium, path: Path) -> None:
    browser.open(path.as_uri())
    browser.wait_for(READY, timeout=90)
    assert browser.evaluate("document.body.dataset.errors") == ""


def assert_plots_drawn(browser: Chromium, *ids: str) -> None:
    for div in ids:
        traces = browser.evaluate(
            f"(function () {{ var d = document.getElementById({json.dumps(div)}); "
            "return d && d.querySelector('.main-svg') && d.data ? d.data.length : 0; })()"
        )
        assert traces > 0, f"plot #{div} was not drawn"


def canvas(browser: Chromium, viewer_id: str) -> Image:
    browser.wait_for(f"document.getElementById({json.dumps(viewer_id)}).dataset.rendered === 'true'", timeout=60)
    return browser.screenshot(f"#{viewer_id} canvas")


def assert_clean(browser: Chromium) -> None:
    assert browser.log.problems() == [], browser.log

"""How long the worker takes to make a prediction's HTML report, and how large it is, by complex size.

The fixture of real boltz output (tests/fixtures/report/egfr-erlotinib, 60 tokens), then synthetic complexes of
3 chains with N tokens (a CA-only PDB with pLDDT in the B-factors, an N x N PAE .npz as boltz writes it). Prints
seconds and bytes; asserts only that each report was made (the figures are not a pass/fail).

    .venv/bin/pytest tests/bench/test_report_generation.py -s -p no:cacheprovider
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from boltz_contract import PredictionResult
from boltz_worker.report.prediction import prediction_report
from support.report import write_npz

pytestmark = pytest.mark.bench
REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "report" / "egfr-erlotinib"


def synthetic_complex(directory: Path, tokens: int) -> PredictionResult:
    lines = []
    for i in range(tokens):
        chain = "ABC"[i * 3 // tokens]
        x, y, z = 3.8 * i, 10 * math.sin(i / 5), 10 * math.cos(i / 5)
        b = 50 + 45 * math.sin(i / 17)
        lines.append(
            f"ATOM  {i + 1:>5}  CA  ALA {chain}{i + 1:>4}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00{b:6.2f}           C"
        )
    (directory / "big_model_0.pdb").write_text("\n".join(lines) + "\nEND\n")
    pae = [[abs(i - j) / tokens * 30 for j in range(tokens)] for i in range(tokens)]
    write_npz(directory / "pae_big_model_0.npz", "pae", pae)
    confidence = {"confidence_score": 0.8, "ptm": 0.7, "iptm": 0.6, "complex_plddt": 0.75}
    return PredictionResult(record_id="big", results_uri="pvc://r/big", files=[], structures=["big_model_0.pdb"],
                            confidence=[confidence], started_at="t", finished_at="t")  # fmt: skip


def timed(directory: Path, result: PredictionResult) -> tuple[float, int]:
    started = time.perf_counter()
    page = prediction_report(directory, result)
    return time.perf_counter() - started, len(page.encode())


def test_report_generation_time_and_size(tmp_path):
    rows = [("egfr-erlotinib (real boltz output)", 60, *timed(FIXTURE, PredictionResult.model_validate_json(
        (FIXTURE / "result.json").read_text())))]  # fmt: skip
    for tokens in (300, 1000, 2500):
        directory = tmp_path / str(tokens)
        directory.mkdir()
        rows.append(("synthetic, 3 chains", tokens, *timed(directory, synthetic_complex(directory, tokens))))
    print("\nreport generation (one process, one run each):")
    print(f"{'input':<36} {'tokens':>7} {'seconds':>8} {'MB':>6}")
    for name, tokens, seconds, size in rows:
        print(f"{name:<36} {tokens:>7} {seconds:>8.2f} {size / 1e6:>6.2f}")
    assert all(size > 0 for *_, size in rows)

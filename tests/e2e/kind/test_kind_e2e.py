"""kind + real GPUs: run.sh end to end (one real Boltz-2 prediction). Skipped where there is no Docker engine or
no NVIDIA GPU (as on the development machines, which have neither). Not in the default test paths:
    .venv/bin/pytest tests/e2e -s
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RUN = Path(__file__).with_name("run.sh")


def answers(*argv: str) -> bool:
    if not shutil.which(argv[0]):
        return False
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_the_script_parses():
    subprocess.run(["bash", "-n", str(RUN)], check=True)


def test_kind_with_gpus_runs_one_real_prediction():
    if not answers("docker", "info"):
        pytest.skip("no Docker engine (docker info fails): the kind e2e needs Docker and NVIDIA GPUs")
    if not answers("nvidia-smi", "-L"):
        pytest.skip("no NVIDIA GPU (nvidia-smi -L fails)")
    for tool in ("kind", "kubectl", "helm"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (see tests/e2e/kind/README.md)")
    # Builds two images, downloads the weights once (~6 GB) and runs Boltz-2 on a GPU: allow hours on a cold start.
    result = subprocess.run(["bash", str(RUN)], text=True, capture_output=True, timeout=3 * 3600)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert "E2E OK: phase Succeeded" in result.stdout

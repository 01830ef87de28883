"""Running BoltzScreen's worker commands as their pods run them, with the real boltz 2.2.1 (fidelity tests, bench):
run.json and the files in a config dir, `boltz-worker <command>` as a process of this venv, boltz (and RDKit) from
the boltz venv: BOLTZ_EXECUTABLE for `boltz predict`, BOLTZ_PYTHON for prepare's children. Out come the exit code,
the summary, the output and the wall time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from boltz_contract import PredictOptions, RunSummary

# As small as boltz allows (support.fidelity.CPU_OPTIONS, as the worker's options): the model is random, only the
# path through boltz matters.
CPU_PREDICT_OPTIONS = PredictOptions(diffusion_samples=1, recycling_steps=0, sampling_steps=2, use_kernels=False,
                                     sampling_steps_affinity=2, diffusion_samples_affinity=1)  # fmt: skip


@dataclass
class WorkerRun:
    code: int
    summary: RunSummary | None
    output: str
    seconds: float


def run_worker_process(
    command: str, run, files: dict[str, str], root: Path, boltz_python: Path, cpus: int = 2,
    wrap: list[str] | None = None, timeout: float = 1800,
) -> WorkerRun:  # fmt: skip
    """`boltz-worker <command>` on `run` with `files` beside run.json under root/config; `wrap`: a command prefix
    (e.g. a read-only bind mount of the model cache)."""
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (config / name).write_text(text)
    (config / "run.json").write_text(run.model_dump_json())
    termination = root / "termination-log"
    termination.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BOLTZ_EXECUTABLE": str(boltz_python.parent / "boltz"),
        "BOLTZ_PYTHON": str(boltz_python),
        "BOLTZ_WORKER_ACCELERATOR": "cpu",
        "BOLTZ_WORK_DIR": str(root / "work"),
        "BOLTZ_WORKER_CPUS": str(cpus),
        "HOME": str(root / "home"),
    }
    argv = [*(wrap or []), sys.executable, "-m", "boltz_worker.cli", command, "--run", str(config / "run.json"),
            "--termination-log", str(termination)]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.monotonic() - started
    summary = RunSummary.from_termination_message(termination.read_text()) if termination.is_file() else None
    return WorkerRun(proc.returncode, summary, proc.stdout + proc.stderr, seconds)

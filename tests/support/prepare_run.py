"""Running `boltz-worker prepare` as its pod runs it: run.json and the input in a config dir, the worker (this
venv) as a process, boltz's part in the boltz venv's python (BOLTZ_PYTHON), out come the exit code, the
termination message, the log, the wall time and the peak memory the worker logged for boltz's process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from boltz_contract import PrepareRun, RunSummary

PEAK = re.compile(r"boltz's input processing exited -?\d+; peak memory (\d+) MiB \(the worker's own: (\d+) MiB\)")


@dataclass
class PrepareOutcome:
    code: int
    summary: RunSummary | None
    output: str
    seconds: float
    peak_bytes: float | None  # boltz's process (the child)
    worker_peak_bytes: float | None  # the worker's own process

    @property
    def message(self) -> str:
        return (self.summary.message if self.summary else None) or ""


def cache_with_mols(root: Path, mol_dir: Path) -> Path:
    """A model cache directory whose mols/ is `mol_dir` (prepare reads nothing else of the cache)."""
    cache = root / "boltz2"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "mols").exists():
        (cache / "mols").symlink_to(mol_dir, target_is_directory=True)
    return cache


def write_config(root: Path, run: PrepareRun, doc: dict) -> Path:
    """<root>/config with run.json and the input; returns run.json's path."""
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / run.input_file).write_text(yaml.safe_dump(doc, sort_keys=False))
    (config / "run.json").write_text(run.model_dump_json())
    return config / "run.json"


def start_prepare(run_json: Path, boltz_python: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    root = run_json.parent.parent
    full_env = {
        **os.environ,
        "BOLTZ_PYTHON": str(boltz_python),
        "BOLTZ_WORK_DIR": str(root / "work"),
        "HOME": str(root / "home"),
        **(env or {}),
    }
    command = [sys.executable, "-m", "boltz_worker.cli", "prepare", "--run", str(run_json),
               "--termination-log", str(root / "termination-log")]  # fmt: skip
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_prepare(process: subprocess.Popen, run_json: Path, started: float, timeout: float = 600) -> PrepareOutcome:
    output, _ = process.communicate(timeout=timeout)
    seconds = time.monotonic() - started
    termination = run_json.parent.parent / "termination-log"
    summary = RunSummary.from_termination_message(termination.read_text()) if termination.is_file() else None
    peak = PEAK.search(output)
    peak_bytes = int(peak.group(1)) * 2**20 if peak else None
    worker_bytes = int(peak.group(2)) * 2**20 if peak else None
    return PrepareOutcome(process.returncode, summary, output, seconds, peak_bytes, worker_bytes)


def run_prepare(root: Path, run: PrepareRun, doc: dict, boltz_python: Path, env: dict | None = None) -> PrepareOutcome:
    """Write the config under `root` and run prepare on it to the end."""
    run_json = write_config(root, run, doc)
    started = time.monotonic()
    return finish_prepare(start_prepare(run_json, boltz_python, env), run_json, started)

"""What a shard's boltz run amounts to, read from boltz 2.2.1's output as it streams and after it ends: when boltz
reaches its affinity step, why it skipped each ligand it names, why a ligand it does not name has no output (out of
GPU memory in that step), and the error of a boltz process that died (see screen_shard.py's docstring for the
lines).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from boltz_contract import ErrorClass, WorkerError, shorten_middle
from boltz_worker.boltz_runs.boltz_command import BoltzResult, container_memory_bytes
from boltz_worker.boltz_runs.boltz_outputs import (
    AFFINITY_STEP_MARKERS,
    DATA_FAILURE,
    DEVICE_BUG_MARKERS,
    GPU_DEVICE_MARKERS,
    OOM_MARKERS,
    PREPROCESS_FAILURE,
)
from boltz_worker.fileutil import human_bytes
from boltz_worker.screen_runs.progress import ShardProgress


class StepWatch(io.TextIOBase):
    """boltz's output echoed to ours, watched: when boltz reaches its affinity step, and each input it refused with
    boltz's whole message (`refused`: ligand id -> reason), which may span lines: boltz prints "Failed to process
    <input>. Skipping. Error: {e}." and an RDKit error's text has several."""

    MAX_LINES = 6

    def __init__(self, progress: ShardProgress):
        super().__init__()
        self.progress = progress
        self.refused: dict[str, str] = {}
        self._open: tuple[str, list[str]] | None = None

    def write(self, line: str) -> int:
        sys.stdout.write(line)
        if any(marker in line for marker in AFFINITY_STEP_MARKERS):
            self.progress.affinity_step = True
        text = line.strip()
        if self._open is not None and text:
            record, parts = self._open
            parts.append(text)
            if text.endswith(".") or len(parts) >= self.MAX_LINES:
                self.finish()
        match = PREPROCESS_FAILURE.search(line)
        if match:
            self.finish()
            self._open = (Path(match.group("path")).stem, [match.group("error").strip()])
            if match.group("error").strip().endswith("."):
                self.finish()
        return len(line)

    def finish(self) -> None:
        """Record the message being read, if any (boltz ended before its last line)."""
        if self._open is not None:
            record, parts = self._open
            self.refused[record] = f"boltz refused the input: {_clip(' '.join(parts).rstrip('.'))}"
            self._open = None

    def flush(self) -> None:
        sys.stdout.flush()


def failure_reasons(result: BoltzResult) -> dict[str, str]:
    """Ligand id -> why boltz skipped it, from the lines boltz names a record in (see the module's docstring)."""
    reasons: dict[str, str] = {}
    for line in result.log.lines():
        match = PREPROCESS_FAILURE.search(line)
        if match:
            reasons.setdefault(
                Path(match.group("path")).stem, f"boltz refused the input: {_clip(match.group('error').rstrip('.'))}"
            )
            continue
        match = DATA_FAILURE.search(line)
        if match:
            reasons.setdefault(match.group("record"), f"boltz skipped it: {_clip(match.group('error'))}")
    return reasons


def reached_affinity(result: BoltzResult) -> bool:
    return any(m in line for line in result.log.lines() for m in AFFINITY_STEP_MARKERS)


def unexplained_reason(result: BoltzResult, step: str) -> str:
    """Why a ligand has no output of `step` ("structure" or "affinity") when no line names it: out of GPU memory when
    boltz said so in that step (its OOM line names no record), else that boltz gave no reason."""
    step_lines, in_affinity = [], False
    for line in result.log.notable:
        in_affinity = in_affinity or any(m in line for m in AFFINITY_STEP_MARKERS)
        if in_affinity == (step == "affinity"):
            step_lines.append(line)
    if any(m in line for line in step_lines for m in OOM_MARKERS):
        return f"boltz ran out of GPU memory in the {step} step and skipped it"
    return f"boltz wrote no {step} output for it (its log names no reason)"


def crash_error(result: BoltzResult) -> WorkerError:
    """The error a boltz process that exited non-zero amounts to (the shard's table is uploaded already)."""
    last = _clip(result.log.last_line())
    if result.returncode == -9:
        limit = container_memory_bytes()
        return WorkerError(ErrorClass.MEMORY_LIMIT_EXCEEDED, "boltz was killed by SIGKILL, most likely for exceeding "
                           f"the container's memory limit ({human_bytes(limit) if limit else 'none found'}; host "
                           f"memory, not GPU memory): raise the shard's memory; its last line: {last}")  # fmt: skip
    lines = result.log.lines()
    for line in lines:
        if any(m in line for m in DEVICE_BUG_MARKERS):
            return WorkerError(ErrorClass.INTERNAL, f"boltz hit a CUDA device-side assert (a bug): {_clip(line)}")
    for line in lines:
        if any(m in line for m in GPU_DEVICE_MARKERS):
            return WorkerError(ErrorClass.GPU_DEVICE_ERROR, f"GPU device error: {_clip(line.strip())}")
    how = f"was killed by signal {-result.returncode}" if result.returncode < 0 else f"exited {result.returncode}"
    return WorkerError(ErrorClass.INTERNAL, f"boltz {how}: {last}")


def _clip(text: str) -> str:
    return shorten_middle(" ".join(text.split()), 400)

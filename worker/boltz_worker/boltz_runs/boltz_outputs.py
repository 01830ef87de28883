"""Reading what boltz left behind: its log and its output files, and turning them into an outcome.

boltz 2.2.1 exits 0 when an input failed to process ("Failed to process <path>. Skipping. Error: <e>.") and when
CUDA ran out of memory ("| WARNING: ran out of memory, skipping batch"), so the exit code alone says little.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from boltz_contract import ErrorClass, WorkerError, shorten_middle
from boltz_worker.fileutil import human_bytes

TAIL_LINES = 200
NOTABLE_LINES = 100
MESSAGE_LIMIT = 600  # characters of boltz text quoted in a message (the termination message is 4 KiB)

PREPROCESS_FAILURE = re.compile(r"Failed to process (?P<path>.+?)\. Skipping\. Error: (?P<error>.*)$")
DATA_FAILURE = re.compile(
    r"(?:Tokenizer failed on|Cropper failed on|Featurizer failed on|Molecule loading failed for) "
    r"(?P<record>\S+) with error (?P<error>.*?)\.? Skipping\."
)
OOM_MARKERS = ("ran out of memory", "CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory")
# What boltz/main.py `predict` echoes between the structure step and the affinity step: an out-of-memory line after
# one of these happened in the affinity step (its own model and options: samplingStepsAffinity, ...).
AFFINITY_STEP_MARKERS = ("Predicting property: affinity", "Running affinity prediction for")
SIGKILL = 9  # the cgroup's OOM killer (and only it, short of the kubelet's grace period) kills boltz with it
DEVICE_BUG_MARKERS = ("device-side assert",)  # the model indexed out of bounds: a bug, not a bad GPU
GPU_DEVICE_MARKERS = (
    "CUDA error",
    "CUDA driver",
    "cudaError",
    "CUBLAS_STATUS",
    "CUDNN_STATUS",
    "NCCL error",
    "Xid",
    "uncorrectable ECC",
    "No CUDA GPUs are available",
    "Found no NVIDIA driver",
    "no CUDA-capable device",
)
MSA_SERVER_MARKERS = (
    "MMseqs2 API",
    "MSA generation request",
    "Max retries exceeded",
    "ConnectionError",
    "Connection refused",
    "timed out",
)
_NOTABLE = re.compile(
    "|".join(
        re.escape(m)
        for m in (
            "Failed to process",
            " failed on ",
            "Molecule loading failed",
            "Number of failed examples",
            "POOL BROKEN",  # boltzgen's analysis restarted its process pool: a worker died (design.py counts them)
            *OOM_MARKERS,
            *AFFINITY_STEP_MARKERS,
            *DEVICE_BUG_MARKERS,
            *GPU_DEVICE_MARKERS,
        )
    )
)


@dataclass
class BoltzLog:
    """The last TAIL_LINES lines, plus the lines classification looks for wherever they appeared."""

    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    notable: deque = field(default_factory=lambda: deque(maxlen=NOTABLE_LINES))

    def add(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        self.tail.append(line)
        if _NOTABLE.search(line):
            self.notable.append(line)

    @classmethod
    def of(cls, text: str) -> BoltzLog:
        boltz_log = cls()
        for line in text.splitlines():
            boltz_log.add(line)
        return boltz_log

    def lines(self) -> list[str]:
        return [*self.notable, *self.tail]

    def last_line(self) -> str:
        return self.tail[-1].strip() if self.tail else "(boltz printed nothing)"


@dataclass
class PredictionOutputs:
    directory: Path  # <out>/boltz_results_<id>/predictions/<id>
    structures: list[Path] = field(default_factory=list)  # by rank: model 0 (best) first
    confidences: list[Path] = field(default_factory=list)  # confidence_<id>_model_<k>.json by rank
    affinity: Path | None = None
    files: list[Path] = field(default_factory=list)  # everything in the directory

    def confidence(self, rank: int = 0) -> dict:
        return _read_json(self.confidences[rank]) if rank < len(self.confidences) else {}

    def affinity_values(self) -> dict | None:
        return _read_json(self.affinity) if self.affinity else None


def predictions_dir(out_dir: Path, record_id: str) -> Path:
    return out_dir / f"boltz_results_{record_id}" / "predictions" / record_id


def find_outputs(out_dir: Path, record_id: str) -> PredictionOutputs:
    directory = predictions_dir(out_dir, record_id)
    outputs = PredictionOutputs(directory=directory)
    if not directory.is_dir():
        return outputs
    outputs.files = sorted(p for p in directory.rglob("*") if p.is_file())
    outputs.structures = _by_model_rank(directory, rf"{re.escape(record_id)}_model_(\d+)\.(?:cif|pdb)")
    outputs.confidences = _by_model_rank(directory, rf"confidence_{re.escape(record_id)}_model_(\d+)\.json")
    affinity = directory / f"affinity_{record_id}.json"
    outputs.affinity = affinity if affinity.is_file() else None
    return outputs


def _by_model_rank(directory: Path, pattern: str) -> list[Path]:
    regex = re.compile(pattern)
    ranked = []
    for path in directory.iterdir():
        match = regex.fullmatch(path.name)
        if match:
            ranked.append((int(match.group(1)), path))
    return [path for _, path in sorted(ranked)]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise WorkerError(ErrorClass.INTERNAL, f"boltz wrote an unreadable {path.name}: {e}") from e


# ---------------------------------------------------------------------------------------------- classification


def classify(
    returncode: int,
    boltz_log: BoltzLog,
    outputs: PredictionOutputs,
    affinity_binder: str | None,
    memory_limit: int | None = None,
) -> WorkerError | None:
    """The error a finished boltz run amounts to, or None when it produced everything that was asked for.

    `memory_limit`: the container's memory limit in bytes (boltz_command.container_memory_bytes), named in the
    message when boltz was killed by SIGKILL (returncode -9): MEMORY_LIMIT_EXCEEDED, not retried."""
    affinity_missing = bool(affinity_binder) and outputs.affinity is None
    if returncode == 0 and outputs.structures and not affinity_missing:
        return None  # complete: warnings in the log (e.g. CUDA init noise on a CPU run) do not matter
    if returncode == -SIGKILL:
        return _memory_limit_kill(boltz_log, memory_limit)
    lines = boltz_log.lines()
    error = _input_failure(lines) or _out_of_memory(boltz_log) or _device_failure(lines)
    if error:
        return error
    last = _clip(boltz_log.last_line())
    if returncode != 0:
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        return WorkerError(ErrorClass.INTERNAL, f"boltz {how}: {last}")
    if not outputs.structures:
        return WorkerError(ErrorClass.INTERNAL, f"boltz wrote no structure files: {last}")
    return WorkerError(
        ErrorClass.INTERNAL,
        f"affinity was requested for ligand {affinity_binder} but boltz wrote no "
        f"affinity_{outputs.directory.name}.json: {last}",
    )


def _input_failure(lines: list[str]) -> WorkerError | None:
    for line in lines:
        match = PREPROCESS_FAILURE.search(line) or DATA_FAILURE.search(line)
        if not match:
            continue
        text = _clip(match.group("error").strip().rstrip("."))
        if any(marker in text for marker in MSA_SERVER_MARKERS):
            return WorkerError(ErrorClass.SOURCE_UNAVAILABLE, f"the MSA server failed: {text}")
        return WorkerError(ErrorClass.INVALID_INPUT, f"boltz could not process the input: {text}")
    return None


def _memory_limit_kill(boltz_log: BoltzLog, memory_limit: int | None) -> WorkerError:
    limit = f"the container's memory limit ({human_bytes(memory_limit)})" if memory_limit else "the node's memory"
    return WorkerError(
        ErrorClass.MEMORY_LIMIT_EXCEEDED,
        f"boltz was killed by SIGKILL, most likely for exceeding {limit} (host memory, not GPU memory): raise "
        f"spec.resources.memory; its last line: {_clip(boltz_log.last_line())}",
    )


def _out_of_memory(boltz_log: BoltzLog) -> WorkerError | None:
    """GPU out of memory, with the options of the step that ran out: the structure step (diffusionSamples,
    maxParallelSamples) or the affinity step, which boltz runs after echoing AFFINITY_STEP_MARKERS."""
    step = "structure"
    out_of_memory_in = None
    for line in boltz_log.notable:  # in log order (the tail may have lost the early lines)
        if any(marker in line for marker in AFFINITY_STEP_MARKERS):
            step = "affinity"
        elif any(marker in line for marker in OOM_MARKERS):
            out_of_memory_in = step
    if out_of_memory_in is None and any(m in line for line in boltz_log.tail for m in OOM_MARKERS):
        out_of_memory_in = step
    if out_of_memory_in == "affinity":
        return WorkerError(
            ErrorClass.GPU_OUT_OF_MEMORY,
            "boltz ran out of GPU memory in the affinity step; try fewer options.affinity.diffusionSamples or "
            "options.affinity.samplingSteps, or a larger GPU",
        )
    if out_of_memory_in == "structure":
        return WorkerError(
            ErrorClass.GPU_OUT_OF_MEMORY,
            "boltz ran out of GPU memory in the structure step; try fewer options.diffusionSamples (or a smaller "
            "options.maxParallelSamples) or a larger GPU",
        )
    return None


def _device_failure(lines: list[str]) -> WorkerError | None:
    for line in lines:
        if any(marker in line for marker in DEVICE_BUG_MARKERS):
            return WorkerError(ErrorClass.INTERNAL, f"boltz hit a CUDA device-side assert (a bug): {_clip(line)}")
    for line in lines:
        if any(marker in line for marker in GPU_DEVICE_MARKERS):
            return WorkerError(ErrorClass.GPU_DEVICE_ERROR, f"GPU device error: {_clip(line.strip())}")
    return None


def _clip(text: str) -> str:
    return shorten_middle(text, MESSAGE_LIMIT)

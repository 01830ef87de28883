"""Building and running `boltzgen run` / `boltzgen merge` command lines (option names as boltzgen 0.3.2 spells them,
cli/boltzgen.py), and turning a failed boltzgen into an error class.

boltzgen's defaults name its checkpoints and molecules as `huggingface:<repo>:<file>` and download them at start; the
worker always passes the local paths of the model cache instead (a plain path is used as it is and only checked to
exist), and sets HF_HUB_OFFLINE=1 so nothing can reach for a hub.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from boltz_contract import (
    ANALYSIS_PROCESS_BYTES,
    DESIGN_SHARD_STEPS,
    BoltzGenModels,
    DesignOptions,
    ErrorClass,
    FilterOptions,
    WorkerError,
)
from boltz_worker.boltz_runs.boltz_command import BoltzResult, flag_option, run_boltz, valued_option

ENV_EXECUTABLE = "BOLTZGEN_EXECUTABLE"  # a command line (split like a shell would, never run by one)

__all__ = [
    "BoltzResult",
    "analysis_processes",
    "boltzgen_executable",
    "build_design_argv",
    "build_filter_argv",
    "build_merge_argv",
    "child_env",
    "failure",
    "filter_failure",
    "run_boltzgen",
]


def boltzgen_executable() -> list[str]:
    return shlex.split(os.environ.get(ENV_EXECUTABLE, "boltzgen"))


def analysis_processes(cpus: int, memory_bytes: int | None) -> int:
    """Processes for boltzgen's analysis pool: one per CPU, but no more than the memory limit holds at
    ANALYSIS_PROCESS_BYTES each (at least 1). A pool larger than memory gets its workers killed, and boltzgen then
    drops their designs and exits 0; a smaller pool only takes longer."""
    cpus = max(1, cpus)
    if memory_bytes is None:
        return cpus
    return max(1, min(cpus, int(memory_bytes // ANALYSIS_PROCESS_BYTES)))


def _model_args(models: BoltzGenModels) -> list[str]:
    return [
        "--moldir", models.moldir,
        "--design_checkpoints", *models.design_checkpoints,
        "--inverse_fold_checkpoint", models.inverse_fold_checkpoint,
        "--folding_checkpoint", models.folding_checkpoint,
        "--affinity_checkpoint", models.affinity_checkpoint,
    ]  # fmt: skip


def build_design_argv(
    executable: list[str],
    spec: Path,
    out_dir: Path,
    protocol: str,
    num_designs: int,
    options: DesignOptions,
    models: BoltzGenModels,
    cpus: int,
) -> list[str]:
    """`boltzgen run` for one shard: every step up to analysis, local models, `cpus` analysis processes (the
    caller's analysis_processes: our CPUs, capped by memory).

    The analysis step's process count is its config key `num_processes` (resources/config/analysis.yaml: 32, capped
    by boltzgen at multiprocessing.cpu_count(), which is the NODE's count); only `--config analysis` reaches it.
    """
    o = options
    steps = list(o.steps) if o.steps is not None else list(DESIGN_SHARD_STEPS)
    argv = [
        *executable, "run", str(spec),
        "--output", str(out_dir),
        "--protocol", protocol,
        "--num_designs", str(num_designs),
        "--devices", "1",
        "--use_kernels", o.use_kernels,
        "--inverse_fold_num_sequences", str(o.inverse_fold_num_sequences),
        *_model_args(models),
        "--steps", *steps,
        "--config", "analysis", f"num_processes={max(1, cpus)}",
    ]  # fmt: skip
    argv += valued_option("--diffusion_batch_size", o.diffusion_batch_size)
    argv += valued_option("--step_scale", o.step_scale)
    argv += valued_option("--noise_scale", o.noise_scale)
    argv += valued_option("--inverse_fold_avoid", o.inverse_fold_avoid)
    argv += valued_option("--num_workers", o.num_workers)
    argv += flag_option("--skip_inverse_folding", o.skip_inverse_folding)
    argv += flag_option("--reuse", o.reuse)
    return argv


def build_filter_argv(
    executable: list[str],
    spec: Path,
    merged_dir: Path,
    protocol: str,
    budget: int,
    skip_inverse_folding: bool,
    options: FilterOptions,
    models: BoltzGenModels,
) -> list[str]:
    """`boltzgen run <spec> --steps filtering` over a merged directory: writes <merged>/final_ranked_designs/.

    boltzgen configures every step before it keeps only `--steps`, so the model paths must exist here too, and the
    protocol and --skip_inverse_folding must be those the shards ran (they choose the designs directory filtered).
    """
    o = options
    argv = [
        *executable, "run", str(spec),
        "--output", str(merged_dir),
        "--protocol", protocol,
        "--devices", "1",
        "--steps", "filtering",
        "--budget", str(budget),
        "--filter_biased", "true" if o.filter_biased else "false",
        *_model_args(models),
    ]  # fmt: skip
    argv += valued_option("--alpha", o.alpha)
    argv += valued_option("--refolding_rmsd_threshold", o.refolding_rmsd_threshold)
    if o.metrics_override:
        argv += ["--metrics_override", *(f"{k}={'none' if v is None else v}" for k, v in o.metrics_override.items())]
    if o.additional_filters:
        argv += ["--additional_filters", *o.additional_filters]
    if o.size_buckets:
        argv += ["--size_buckets", *o.size_buckets]
    argv += flag_option("--skip_inverse_folding", skip_inverse_folding)
    return argv


def build_merge_argv(executable: list[str], sources: list[Path], out_dir: Path) -> list[str]:
    """`boltzgen merge`: ids become `<slug of the source dir name>_<id>`, so the source dir names must differ."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"merge sources need distinct directory names: {names}")
    return [*executable, "merge", *(str(s) for s in sources), "--output", str(out_dir)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["HF_HUB_OFFLINE"] = "1"  # every artifact is a local path: a hub lookup would be a bug, so make it fail
    return env


def run_boltzgen(argv: list[str], cwd: Path) -> BoltzResult:
    return run_boltz(argv, cwd=cwd, env=child_env())


_OOM = re.compile(r"CUDA out of memory|OutOfMemoryError")
_NO_GPU = re.compile(
    r"Found no NVIDIA driver|No CUDA GPUs are available|Torch not compiled with CUDA|CUDA error|"
    r"CUDA driver initialization failed|cudaErrorNoDevice"
)
# boltzgen's own refusals of a design spec (0.3.2, read from its parser and check: tests/integration/fidelity/
# test_boltzgen_spec_fidelity.py): every shard would fail the same way, so fail the campaign, not retry on GPUs.
_SPEC = re.compile(
    r"Malformed residue range specification|Misspecified design info|Invalid residue constraints|"
    r"Specified chain id \S+ not in file|is higher than the length of the chain"
)
_MODEL = re.compile(r"Model not found:|LocalEntryNotFoundError|OfflineModeIsEnabled|outgoing traffic has been disabled")


def failure(result: BoltzResult, what: str) -> WorkerError | None:
    """None when boltzgen exited 0; else the error class its output points to (unknown: retryable)."""
    if result.returncode == 0:
        return None
    lines = result.log.lines()
    text = "\n".join(lines)
    last = result.log.last_line()
    if _OOM.search(text):
        return WorkerError(ErrorClass.GPU_OUT_OF_MEMORY, f"{what}: GPU out of memory: {last}")
    if _MODEL.search(text):
        return WorkerError(ErrorClass.MODEL_CACHE_UNUSABLE, f"{what}: a model file is missing: {last}")
    if _SPEC.search(text):
        return WorkerError(ErrorClass.INVALID_INPUT, f"{what}: boltzgen refused the design spec: {last}")
    if _NO_GPU.search(text):
        return WorkerError(ErrorClass.GPU_DEVICE_ERROR, f"{what}: no usable CUDA device: {last}")
    return WorkerError(ErrorClass.INTERNAL, f"{what} exited with code {result.returncode}: {last}")


# A Python exception line as a traceback ends with it: `FileNotFoundError: Required file missing during merge: ...`.
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*(?:Error|Exception))(?:: (.*))?$")
# Failures a retry can get past: the process (or the filtering step's own subprocess) killed, memory, disk.
_TRANSIENT = re.compile(
    r"MemoryError|Killed|SIGKILL|died with <Signals|No space left on device|Errno 28|Connection|Timeout"
)


def filter_failure(result: BoltzResult, what: str) -> WorkerError | None:
    """`failure` for `boltzgen merge` and `boltzgen run --steps filtering`, which read only shard outputs already
    downloaded: when boltzgen raised a Python exception (its traceback's last exception line, the filtering step's
    own one rather than the CalledProcessError of the pipeline around it), every retry reads the same files and
    fails the same way, so it is FILTER_FAILED (the Job fails at once), quoting that exception. A process killed
    (signal, memory) or a full disk stays retryable."""
    error = failure(result, what)
    if error is None or error.error_class != ErrorClass.INTERNAL:
        return error
    lines = result.log.lines()
    if result.returncode < 0 or result.returncode in (137, 143) or _TRANSIENT.search("\n".join(lines)):
        return error
    causes = [line.strip() for line in lines if _EXCEPTION.match(line.strip())]
    own = [c for c in causes if not c.startswith(("subprocess.CalledProcessError", "CalledProcessError"))]
    if not own:
        return error
    cause = own[-1]
    return WorkerError(
        ErrorClass.FILTER_FAILED,
        f"{what} failed on the stored shard outputs (a retry would read the same files): {cause[:600]}",
    )

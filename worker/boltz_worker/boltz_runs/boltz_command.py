"""Building and running the `boltz predict` command line."""

from __future__ import annotations

import io
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from boltz_contract import ENV_CPUS, ENV_MEMORY, ErrorClass, PredictOptions, WorkerError
from boltz_worker.boltz_runs.boltz_outputs import BoltzLog

log = logging.getLogger(__name__)

ENV_EXECUTABLE = "BOLTZ_EXECUTABLE"  # a command line (split like a shell would, never run by one)
ENV_ACCELERATOR = "BOLTZ_WORKER_ACCELERATOR"  # "cpu" for fidelity tests on machines without a GPU
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")


def boltz_executable() -> list[str]:
    return shlex.split(os.environ.get(ENV_EXECUTABLE, "boltz"))


def accelerator() -> str:
    return os.environ.get(ENV_ACCELERATOR, "gpu")


def container_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """CPUs this container may use: $BOLTZ_WORKER_CPUS, else the cgroup v2 quota, else the CPUs we can run on.

    os.cpu_count() alone reports the node's CPUs: boltz would start that many workers in a 2-CPU container.
    """
    override = os.environ.get(ENV_CPUS, "").strip()
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            log.warning("ignoring %s=%r: not an integer", ENV_CPUS, override)
    limit = cgroup_cpu_limit(cpu_max)
    if limit is not None:
        return limit
    return _schedulable_cpus()


def container_memory_bytes(memory_max: Path = CGROUP_MEMORY_MAX) -> int | None:
    """Bytes of memory this container may use: $BOLTZ_WORKER_MEMORY_BYTES, else the cgroup v2 `memory.max`; None
    when neither sets a limit ("max")."""
    for source, text in ((ENV_MEMORY, os.environ.get(ENV_MEMORY, "")), (str(memory_max), _read(memory_max))):
        text = text.strip()
        if not text or text == "max":
            continue
        try:
            return max(1, int(text))
        except ValueError:
            log.warning("ignoring %s=%r: not a number of bytes", source, text)
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def cgroup_cpu_limit(cpu_max: Path) -> int | None:
    """ceil(quota / period) from cgroup v2 `cpu.max` ("max 100000" means no limit)."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def _schedulable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def build_boltz_argv(
    executable: list[str],
    input_path: Path,
    out_dir: Path,
    cache_dir: Path,
    options: PredictOptions,
    cpus: int,
    accelerator: str = "gpu",
) -> list[str]:
    """The argument list for `boltz predict` (option names exactly as boltz 2.2.1 spells them)."""
    o = options
    argv = [
        *executable, "predict", str(input_path),
        "--out_dir", str(out_dir),
        "--cache", str(cache_dir),
        "--accelerator", accelerator,
        "--devices", "1",
        "--recycling_steps", str(o.recycling_steps),
        "--sampling_steps", str(o.sampling_steps),
        "--diffusion_samples", str(o.diffusion_samples),
        "--sampling_steps_affinity", str(o.sampling_steps_affinity),
        "--diffusion_samples_affinity", str(o.diffusion_samples_affinity),
        "--output_format", o.output_format,
        "--num_workers", str(cpus),
        "--preprocessing-threads", str(cpus),
    ]  # fmt: skip
    argv += valued_option("--step_scale", o.step_scale)
    argv += valued_option("--max_parallel_samples", o.max_parallel_samples)
    argv += valued_option("--seed", o.seed)
    argv += flag_option("--use_potentials", o.use_potentials)
    argv += flag_option("--affinity_mw_correction", o.affinity_mw_correction)
    if o.use_msa_server:
        argv += ["--use_msa_server", "--msa_pairing_strategy", o.msa_pairing_strategy]
        argv += valued_option("--msa_server_url", o.msa_server_url)
        # Only the header's name: boltz reads the key itself from $MSA_API_KEY_VALUE (kept out of argv and logs).
        argv += valued_option("--api_key_header", o.msa_api_key_header)
    argv += valued_option("--max_msa_seqs", o.max_msa_seqs)
    argv += flag_option("--subsample_msa", o.subsample_msa)
    argv += valued_option("--num_subsampled_msa", o.num_subsampled_msa)
    argv += flag_option("--no_kernels", not o.use_kernels)
    return argv


def valued_option(option: str, value) -> list[str]:
    """[option, value] for a CLI argument list, or nothing when the value is unset."""
    return [] if value is None else [option, str(value)]


def flag_option(option: str, on: bool) -> list[str]:
    return [option] if on else []


@dataclass
class BoltzResult:
    returncode: int
    log: BoltzLog
    seconds: float


def run_boltz(
    argv: list[str], cwd: Path, env: dict[str, str], echo: TextIO | io.TextIOBase | None = None
) -> BoltzResult:
    """Run boltz, streaming its output line by line to `echo` (our stdout) while keeping what classification needs."""
    echo = echo or sys.stdout
    boltz_log = BoltzLog()
    started = time.monotonic()
    log.info("running: %s", shlex.join(argv))
    try:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1,
        )  # fmt: skip
    except OSError as e:
        raise WorkerError(ErrorClass.INTERNAL, f"cannot start boltz ({argv[0]}): {e}") from e
    with _SigtermForwarding(process):
        assert process.stdout is not None
        for line in process.stdout:
            echo.write(line)
            echo.flush()
            boltz_log.add(line)
        returncode = process.wait()
    seconds = time.monotonic() - started
    log.info("boltz exited with code %d after %.0f s", returncode, seconds)
    return BoltzResult(returncode=returncode, log=boltz_log, seconds=seconds)


class _SigtermForwarding:
    """Pass the kubelet's SIGTERM on to boltz, so the child stops with us instead of running on until SIGKILL."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.previous = None

    def __enter__(self):
        try:
            self.previous = signal.signal(signal.SIGTERM, self._forward)
        except ValueError:  # not the main thread (e.g. under a test runner's thread): nothing to forward
            self.previous = None
        return self

    def _forward(self, signum, _frame) -> None:
        log.warning("received signal %d: stopping boltz", signum)
        self.process.send_signal(signum)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        if self.process.poll() is None:  # we are leaving on an exception: do not leave boltz behind
            self.process.kill()
            self.process.wait()
        return False


def child_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")  # boltz's prints reach us line by line, not at exit
    env.setdefault("BOLTZ_CACHE", str(cache_dir))
    env.setdefault("HF_HUB_OFFLINE", "1")  # the cache is complete: never reach for a hub at run time
    return env

"""The filter's pieces without boltzgen: which failures are deterministic (FilterFailed, not retried), which files
of a shard it downloads, and the design shard's shortfall tolerance."""

from __future__ import annotations

import csv

import pytest

from boltz_contract import FAIL_FAST_EXIT_CODES, DesignOptions, DesignRun, ErrorClass, ExitCode, ResultsTarget
from boltz_worker.boltz_runs.boltz_outputs import BoltzLog
from boltz_worker.boltzgen_runs.boltzgen_command import BoltzResult, filter_failure
from boltz_worker.boltzgen_runs.design import allowed_shortfall
from boltz_worker.boltzgen_runs.filter import shard_files_to_download

MERGE_TRACEBACK = """Traceback (most recent call last):
  File "/venv/bin/boltzgen", line 8, in <module>
    sys.exit(main())
  File "/venv/lib/python3.11/site-packages/boltzgen/cli/boltzgen.py", line 1683, in _copy_path
    raise FileNotFoundError(f"Required file missing during merge: {src}")
FileNotFoundError: Required file missing during merge: /work/shards/shard-00000/intermediate_designs/x_0.cif"""

FILTER_STEP_TRACEBACK = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/boltzgen/resources/main.py", line 52, in <module>
  File "/venv/lib/python3.11/site-packages/boltzgen/task/filter/filter.py", line 372, in load_dataframe
KeyError: 'bb_rmsd'
Traceback (most recent call last):
  File "/venv/bin/boltzgen", line 8, in <module>
subprocess.CalledProcessError: Command '['/venv/bin/python', 'main.py', 'config/filtering.yaml']' returned non-zero exit status 1."""


def result(code: int, text: str) -> BoltzResult:
    return BoltzResult(returncode=code, log=BoltzLog.of(text), seconds=1.0)


def test_a_python_exception_of_merge_is_filter_failed_naming_it():
    error = filter_failure(result(1, MERGE_TRACEBACK), "boltzgen merge")
    assert error.error_class == ErrorClass.FILTER_FAILED and error.exit_code == ExitCode.FILTER_FAILED == 16
    assert ExitCode.FILTER_FAILED in FAIL_FAST_EXIT_CODES
    assert error.message.startswith("boltzgen merge failed on the stored shard outputs")
    assert "FileNotFoundError: Required file missing during merge: /work/shards/shard-00000/" in error.message


def test_the_filtering_steps_own_exception_is_quoted_not_the_pipelines():
    error = filter_failure(result(1, FILTER_STEP_TRACEBACK), "boltzgen filtering")
    assert error.error_class == ErrorClass.FILTER_FAILED and error.message.endswith("KeyError: 'bb_rmsd'")


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (0, "", None),
        (-9, MERGE_TRACEBACK, ErrorClass.INTERNAL),  # killed: retry
        (137, "", ErrorClass.INTERNAL),
        (1, "Traceback (most recent call last):\nMemoryError", ErrorClass.INTERNAL),
        (1, "Traceback (most recent call last):\nOSError: [Errno 28] No space left on device", ErrorClass.INTERNAL),
        (1, "subprocess.CalledProcessError: Command 'x' died with <Signals.SIGKILL: 9>.", ErrorClass.INTERNAL),
        (1, "exit without a traceback", ErrorClass.INTERNAL),
        (1, "RuntimeError: Found no NVIDIA driver on your system.", ErrorClass.GPU_DEVICE_ERROR),
    ],
)
def test_what_stays_retryable_or_keeps_its_class(code, text, expected):
    error = filter_failure(result(code, text), "boltzgen filtering")
    assert (error.error_class if error else None) == expected


def test_the_filter_downloads_the_tables_and_each_rows_structure_and_refolded_structure(tmp_path):
    folded = "intermediate_designs_inverse_folded"
    metrics = tmp_path / "aggregate_metrics_analyze.csv"
    with open(metrics, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "file_name"])
        writer.writeheader()
        writer.writerows([{"id": "x_0", "file_name": "x_0.cif"}, {"id": "x_1", "file_name": "x_1.cif"}])
    listing = [
        "steps.yaml", "config/analysis.yaml", "intermediate_designs/x.cif", "intermediate_designs/x.npz",
        f"{folded}/aggregate_metrics_analyze.csv", f"{folded}/per_target_metrics_analyze.csv",
        f"{folded}/ca_coords_sequences.pkl.gz", f"{folded}/x_0.cif", f"{folded}/x_0.npz", f"{folded}/x_1.cif",
        f"{folded}/x_0_native.cif", f"{folded}/refold_cif/x_0.cif", f"{folded}/refold_cif/x_1.cif",
        f"{folded}/refold_design_cif/x_0.cif", f"{folded}/fold_out_npz/x_0.npz", f"{folded}/metrics_tmp/data_x_0.npz",
    ]  # fmt: skip
    assert shard_files_to_download(listing, metrics, skip_inverse_folding=False) == [
        f"{folded}/aggregate_metrics_analyze.csv", f"{folded}/per_target_metrics_analyze.csv",
        f"{folded}/ca_coords_sequences.pkl.gz", f"{folded}/x_0.cif", f"{folded}/refold_cif/x_0.cif",
        f"{folded}/x_1.cif", f"{folded}/refold_cif/x_1.cif",
    ]  # fmt: skip
    assert shard_files_to_download(listing, metrics, skip_inverse_folding=True) == []  # nothing of that dir here


@pytest.mark.parametrize(("expected", "allowed"), [(1, 0), (19, 0), (20, 1), (100, 5), (199, 9), (1000, 50)])
def test_shortfall_tolerance_is_five_percent_rounded_down(expected, allowed):
    assert allowed_shortfall(expected) == allowed


@pytest.mark.parametrize(("sequences", "skip", "expected"), [(1, False, 10), (2, False, 20), (3, True, 10)])
def test_designs_expected_of_a_shard_counts_every_inverse_folded_sequence(sequences, skip, expected):
    run = DesignRun(
        spec_file="s.yaml",
        num_designs=10,
        results=ResultsTarget(uri="pvc://a/b", local_dir="/r"),
        options=DesignOptions(inverse_fold_num_sequences=sequences, skip_inverse_folding=skip),
    )
    assert run.designs_expected(0) == expected


@pytest.mark.parametrize(
    ("cpus", "memory", "expected"),
    [(8, None, 8), (8, 64 * 2**30, 8), (32, 16 * 2**30, 13), (4, 10**9, 1), (0, None, 1)],
)
def test_analysis_processes_are_one_per_cpu_as_far_as_memory_holds_them(cpus, memory, expected):
    from boltz_worker.boltzgen_runs.boltzgen_command import analysis_processes

    assert analysis_processes(cpus, memory) == expected


def test_container_memory_prefers_the_override_then_the_cgroup(tmp_path, monkeypatch):
    from boltz_worker.boltz_runs.boltz_command import container_memory_bytes

    memory_max = tmp_path / "memory.max"
    memory_max.write_text("max\n")
    monkeypatch.delenv("BOLTZ_WORKER_MEMORY_BYTES", raising=False)
    assert container_memory_bytes(memory_max) is None
    memory_max.write_text("17179869184\n")
    assert container_memory_bytes(memory_max) == 16 * 2**30
    monkeypatch.setenv("BOLTZ_WORKER_MEMORY_BYTES", "1000")
    assert container_memory_bytes(memory_max) == 1000
    assert container_memory_bytes(tmp_path / "absent") == 1000

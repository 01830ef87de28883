"""Turning boltz's exit code, log and output files into an outcome (boltz exits 0 on many failures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boltz_contract import ErrorClass
from boltz_worker.boltz_runs.boltz_outputs import TAIL_LINES, BoltzLog, classify, find_outputs, predictions_dir

RECORD = "rec1"


def write_outputs(out_dir: Path, models: int = 1, affinity: bool = False, suffix: str = "cif") -> Path:
    directory = predictions_dir(out_dir, RECORD)
    directory.mkdir(parents=True)
    for rank in range(models):
        (directory / f"{RECORD}_model_{rank}.{suffix}").write_text("data_x\n")
        confidence = {"confidence_score": 1 - rank / 10}
        (directory / f"confidence_{RECORD}_model_{rank}.json").write_text(json.dumps(confidence))
        (directory / f"plddt_{RECORD}_model_{rank}.npz").write_bytes(b"PK")
    if affinity:
        (directory / f"affinity_{RECORD}.json").write_text(json.dumps({"affinity_pred_value": -1.0}))
        (directory / f"pre_affinity_{RECORD}.npz").write_bytes(b"PK")
    return directory


def outcome(
    tmp_path: Path, log: str, returncode: int = 0, models: int = 0, affinity_file=False, binder=None, memory=None
):
    if models or affinity_file:
        write_outputs(tmp_path, models=models, affinity=affinity_file)
    return classify(returncode, BoltzLog.of(log), find_outputs(tmp_path, RECORD), binder, memory)


PREPROCESS_LOG = """Checking input data.
Traceback (most recent call last):
  File "boltz/main.py", line 548, in process_input
ValueError: Chain B has an invalid residue.
Failed to process /work/rec1.yaml. Skipping. Error: Chain B has an invalid residue.
"""


def test_complete_outputs_are_success(tmp_path):
    assert outcome(tmp_path, "Number of failed examples: 0\n", models=2) is None


def test_complete_outputs_with_affinity_are_success(tmp_path):
    assert outcome(tmp_path, "", models=1, affinity_file=True, binder="L") is None


def test_complete_outputs_win_over_alarming_warnings(tmp_path):
    # e.g. a CPU fidelity run: torch warns about CUDA, yet everything asked for is there.
    log = "UserWarning: CUDA initialization: Found no NVIDIA driver on your system\n"
    assert outcome(tmp_path, log, models=1) is None


def test_preprocessing_failure_is_invalid_input_with_boltz_s_text(tmp_path):
    error = outcome(tmp_path, PREPROCESS_LOG)
    assert error.error_class == ErrorClass.INVALID_INPUT
    assert error.message == "boltz could not process the input: Chain B has an invalid residue"


def test_missing_msa_preprocessing_failure_keeps_boltz_s_wording(tmp_path):
    log = (
        "Failed to process /w/rec1.yaml. Skipping. Error: Missing MSA's in input and --use_msa_server flag not set..\n"
    )
    error = outcome(tmp_path, log)
    assert error.error_class == ErrorClass.INVALID_INPUT
    assert error.message.endswith("Missing MSA's in input and --use_msa_server flag not set")


def test_msa_server_failure_is_retryable_not_invalid_input(tmp_path):
    log = (
        "Failed to process /w/rec1.yaml. Skipping. Error: "
        "MMseqs2 API is undergoing maintenance. Please try again in a few minutes..\n"
    )
    error = outcome(tmp_path, log)
    assert error.error_class == ErrorClass.SOURCE_UNAVAILABLE
    assert "MSA server" in error.message


def test_featurizer_failure_is_invalid_input(tmp_path):
    log = "Featurizer failed on rec1 with error index 5 is out of bounds. Skipping.\n"
    error = outcome(tmp_path, log)
    assert error.error_class == ErrorClass.INVALID_INPUT
    assert error.message.endswith("index 5 is out of bounds")


@pytest.mark.parametrize(
    "log, returncode",
    [
        ("| WARNING: ran out of memory, skipping batch\nNumber of failed examples: 1\n", 0),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n", 1),
        ("RuntimeError: CUDA error: out of memory\n", 1),
        (  # the affinity stage after a structure-stage OOM
            "| WARNING: ran out of memory, skipping batch\nNumber of failed examples: 1\n\n"
            "Predicting property: affinity\n\nFileNotFoundError: [Errno 2] No such file or directory: "
            "'/work/out/boltz_results_rec1/predictions/rec1/pre_affinity_rec1.npz'\n",
            1,
        ),
    ],
)
def test_out_of_memory_in_the_structure_step(tmp_path, log, returncode):
    error = outcome(tmp_path, log, returncode=returncode, binder="L")
    assert error.error_class == ErrorClass.GPU_OUT_OF_MEMORY
    assert "in the structure step; try fewer options.diffusionSamples" in error.message
    assert "options.maxParallelSamples" in error.message and "larger GPU" in error.message
    assert "affinity" not in error.message


@pytest.mark.parametrize("marker", ["Predicting property: affinity", "Running affinity prediction for 1 input."])
def test_out_of_memory_in_the_affinity_step_names_the_affinity_options(tmp_path, marker):
    log = f"Number of failed examples: 0\n\n{marker}\n| WARNING: ran out of memory, skipping batch, 0\n"
    error = outcome(tmp_path, log, models=1, binder="L")
    assert error.error_class == ErrorClass.GPU_OUT_OF_MEMORY
    assert "in the affinity step; try fewer options.affinity.diffusionSamples or options.affinity.samplingSteps" in (
        error.message
    )
    assert "maxParallelSamples" not in error.message


def test_the_affinity_step_is_recognised_after_a_long_log(tmp_path):
    noise = "".join(f"progress line {i}\n" for i in range(TAIL_LINES * 2))
    log = f"Predicting property: affinity\n{noise}| WARNING: ran out of memory, skipping batch\n{noise}"
    error = outcome(tmp_path, log, models=1, binder="L")
    assert "in the affinity step" in error.message


def test_sigkill_is_the_memory_limit_naming_it_and_the_spec_field(tmp_path):
    error = outcome(tmp_path, "Running structure prediction for 1 input.\n", returncode=-9, memory=64 * 2**30)
    assert error.error_class == ErrorClass.MEMORY_LIMIT_EXCEEDED
    assert error.exit_code == 18
    assert "the container's memory limit (64.0 GiB)" in error.message
    assert "raise spec.resources.memory" in error.message


def test_sigkill_without_a_known_limit(tmp_path):
    error = outcome(tmp_path, "", returncode=-9)
    assert error.error_class == ErrorClass.MEMORY_LIMIT_EXCEEDED
    assert "exceeding the node's memory" in error.message


@pytest.mark.parametrize(
    "line",
    [
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "RuntimeError: NCCL error in: ProcessGroupNCCL.cpp:1, unhandled cuda error",
        "NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.",
        "RuntimeError: CUDA error: uncorrectable ECC error encountered",
        "RuntimeError: No CUDA GPUs are available",
        "RuntimeError: CUDA driver initialization failed, you might not have a CUDA gpu.",
    ],
)
def test_gpu_device_errors(tmp_path, line):
    error = outcome(tmp_path, f"Running structure prediction for 1 input.\n{line}\n", returncode=1)
    assert error.error_class == ErrorClass.GPU_DEVICE_ERROR
    assert line.strip() in error.message


def test_device_side_assert_is_a_bug_not_a_device_fault(tmp_path):
    log = "RuntimeError: CUDA error: device-side assert triggered\n"
    error = outcome(tmp_path, log, returncode=1)
    assert error.error_class == ErrorClass.INTERNAL
    assert "device-side assert" in error.message


def test_nonzero_exit_without_a_known_cause_names_the_last_line(tmp_path):
    error = outcome(tmp_path, "Traceback (most recent call last):\n  ...\nKeyError: 'coords'\n", returncode=1)
    assert error.error_class == ErrorClass.INTERNAL
    assert error.message == "boltz exited with code 1: KeyError: 'coords'"


def test_killed_by_another_signal(tmp_path):
    error = outcome(tmp_path, "Running structure prediction for 1 input.\n", returncode=-6)
    assert error.error_class == ErrorClass.INTERNAL
    assert error.message.startswith("boltz was killed by signal 6")


def test_no_structure_files_is_internal(tmp_path):
    error = outcome(tmp_path, "Number of failed examples: 0\n")
    assert error.error_class == ErrorClass.INTERNAL
    assert error.message == "boltz wrote no structure files: Number of failed examples: 0"


def test_silent_boltz(tmp_path):
    assert outcome(tmp_path, "").message == "boltz wrote no structure files: (boltz printed nothing)"


def test_requested_affinity_without_its_file_is_internal(tmp_path):
    error = outcome(tmp_path, "Number of failed examples: 0\n", models=1, binder="L")
    assert error.error_class == ErrorClass.INTERNAL
    assert "affinity was requested for ligand L but boltz wrote no affinity_rec1.json" in error.message


def test_a_cause_early_in_a_long_log_is_still_found(tmp_path):
    log = PREPROCESS_LOG + "".join(f"progress {i}\n" for i in range(TAIL_LINES * 3))
    assert outcome(tmp_path, log).error_class == ErrorClass.INVALID_INPUT


def test_quoted_boltz_text_is_clipped(tmp_path):
    log = f"Failed to process /w/rec1.yaml. Skipping. Error: {'x' * 5000}.\n"
    assert len(outcome(tmp_path, log).message) < 700


def test_log_keeps_only_the_tail_and_splits_carriage_returns():
    log = BoltzLog()
    for i in range(TAIL_LINES + 50):
        log.add(f"line {i}\n")
    log.add("\n")
    assert len(log.tail) == TAIL_LINES
    assert log.tail[0] == "line 50" and log.last_line() == f"line {TAIL_LINES + 49}"


# ---------------------------------------------------------------------------------------------- outputs


def test_find_outputs_orders_models_by_rank_numerically(tmp_path):
    write_outputs(tmp_path, models=12, affinity=True)
    outputs = find_outputs(tmp_path, RECORD)
    assert [p.name for p in outputs.structures][:3] == ["rec1_model_0.cif", "rec1_model_1.cif", "rec1_model_2.cif"]
    assert outputs.structures[-1].name == "rec1_model_11.cif"
    assert outputs.confidence(0) == {"confidence_score": 1.0}
    assert outputs.affinity_values() == {"affinity_pred_value": -1.0}
    assert len(outputs.files) == 12 * 3 + 2


def test_find_outputs_reads_pdb_structures(tmp_path):
    write_outputs(tmp_path, models=1, suffix="pdb")
    assert [p.name for p in find_outputs(tmp_path, RECORD).structures] == ["rec1_model_0.pdb"]


def test_find_outputs_ignores_other_records_files(tmp_path):
    directory = write_outputs(tmp_path, models=1)
    (directory / "rec10_model_0.cif").write_text("")
    assert [p.name for p in find_outputs(tmp_path, RECORD).structures] == ["rec1_model_0.cif"]


def test_find_outputs_when_boltz_wrote_nothing(tmp_path):
    outputs = find_outputs(tmp_path, RECORD)
    assert outputs.structures == [] and outputs.files == [] and outputs.affinity is None
    assert outputs.confidence(0) == {} and outputs.affinity_values() is None

"""What a shard's boltz run amounts to (screen_shard.py): each skipped ligand's reason from boltz's own lines, and the
error of a boltz process that died."""

from __future__ import annotations

import pytest

from boltz_contract import ErrorClass
from boltz_worker.boltz_runs.boltz_command import BoltzResult
from boltz_worker.boltz_runs.boltz_outputs import BoltzLog
from boltz_worker.screen_runs.shard_outcomes import crash_error, failure_reasons, unexplained_reason


def result(text: str, returncode: int = 0) -> BoltzResult:
    return BoltzResult(returncode=returncode, log=BoltzLog.of(text), seconds=1.0)


def test_reasons_come_from_the_lines_boltz_names_a_record_in():
    run = result(
        "Failed to process /work/inputs/lig-1.yaml. Skipping. Error: Failed to compute 3D conformer for C1=CC=C1.\n"
        "Featurizer failed on lig-2 with error index 7 is out of bounds for axis 0. Skipping.\n"
        "Molecule loading failed for lig-3 with error CCD component XYZ not found!. Skipping.\n"
    )
    assert failure_reasons(run) == {
        "lig-1": "boltz refused the input: Failed to compute 3D conformer for C1=CC=C1",
        "lig-2": "boltz skipped it: index 7 is out of bounds for axis 0",
        "lig-3": "boltz skipped it: CCD component XYZ not found!",
    }


def test_out_of_memory_is_told_apart_by_the_step_it_happened_in():
    structure_oom = result("Running structure prediction for 3 inputs.\n| WARNING: ran out of memory, skipping batch\n"
                           "\nPredicting property: affinity\n\nRunning affinity prediction for 2 inputs.\n")  # fmt: skip
    assert (
        unexplained_reason(structure_oom, "structure")
        == "boltz ran out of GPU memory in the structure step and skipped it"
    )
    assert (
        unexplained_reason(structure_oom, "affinity")
        == "boltz wrote no affinity output for it (its log names no reason)"
    )
    affinity_oom = result("Predicting property: affinity\n| WARNING: ran out of memory, skipping batch\n")
    assert (
        unexplained_reason(affinity_oom, "affinity")
        == "boltz ran out of GPU memory in the affinity step and skipped it"
    )


@pytest.mark.parametrize(("text", "code", "error_class", "start"), [
    ("Running structure prediction for 8 inputs.\n", -9, ErrorClass.MEMORY_LIMIT_EXCEEDED, "boltz was killed by SIGKILL"),
    ("RuntimeError: CUDA error: an illegal memory access was encountered\n", 1, ErrorClass.GPU_DEVICE_ERROR,
     "GPU device error: RuntimeError: CUDA error"),
    ("RuntimeError: CUDA error: device-side assert triggered\n", 1, ErrorClass.INTERNAL, "boltz hit a CUDA device-side"),
    ("Traceback (most recent call last):\nValueError: something else\n", 1, ErrorClass.INTERNAL,
     "boltz exited 1: ValueError: something else"),
])  # fmt: skip
def test_a_dead_boltz_process_is_classified(text, code, error_class, start):
    error = crash_error(result(text, code))
    assert error.error_class == error_class
    assert error.message.startswith(start), error.message


def test_a_refusal_whose_message_spans_lines_is_read_whole(tmp_path, capsys):
    from boltz_worker.screen_runs.shard_outcomes import StepWatch

    class Progress:
        affinity_step = False

    watch = StepWatch(Progress())  # type: ignore[arg-type]
    for line in ("Failed to process /w/inputs/broken.yaml. Skipping. Error: Python argument types in\n",
                 "    rdkit.Chem.rdmolops.AddHs(NoneType)\n", "did not match C++ signature:\n",
                 "    AddHs(RDKit::ROMol mol, bool explicitOnly=False).\n",
                 "Failed to process /w/inputs/other.yaml. Skipping. Error: Failed to compute 3D conformer for C.\n",
                 "\nPredicting property: affinity\n"):  # fmt: skip
        watch.write(line)
    watch.finish()
    assert watch.refused == {
        "broken": "boltz refused the input: Python argument types in rdkit.Chem.rdmolops.AddHs(NoneType) did not match "
        "C++ signature: AddHs(RDKit::ROMol mol, bool explicitOnly=False)",
        "other": "boltz refused the input: Failed to compute 3D conformer for C",
    }
    assert watch.progress.affinity_step
    assert "AddHs(NoneType)" in capsys.readouterr().out  # echoed as it came

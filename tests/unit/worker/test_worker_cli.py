"""The CLI's contract with the operator: exit codes and the termination message, whatever happens."""

from __future__ import annotations

import json

import pytest

from boltz_contract import (
    TERMINATION_MESSAGE_LIMIT,
    ErrorClass,
    FileSummary,
    PopulateRun,
    PopulateSource,
    RunSummary,
    WorkerError,
)
from boltz_worker import cli


@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "run.json"
    run = PopulateRun(models_dir=str(tmp_path / "models"), source=PopulateSource(preloaded=True))
    path.write_text(run.model_dump_json())
    return path


def invoke(run_file, tmp_path, command="populate"):
    termination = tmp_path / "termination-log"
    code = cli.main([command, "--run", str(run_file), "--termination-log", str(termination)])
    return code, json.loads(termination.read_text())


def fake_command(monkeypatch, behaviour):
    monkeypatch.setitem(cli._COMMANDS, "populate", lambda run, path: behaviour())


def test_success_writes_the_summary_and_exits_0(run_file, tmp_path, monkeypatch):
    fake_command(monkeypatch, lambda: RunSummary(ok=True, total_bytes=42, files=[FileSummary(path="a", bytes=42)]))
    code, message = invoke(run_file, tmp_path)
    assert code == 0
    assert message == {"ok": True, "total_bytes": 42, "files": [{"path": "a", "bytes": 42}]}


@pytest.mark.parametrize(
    "error_class, exit_code",
    [
        (ErrorClass.INVALID_INPUT, 10),
        (ErrorClass.MODEL_CACHE_UNUSABLE, 11),
        (ErrorClass.GPU_OUT_OF_MEMORY, 12),
        (ErrorClass.RESULTS_STORE_ERROR, 13),
        (ErrorClass.GPU_DEVICE_ERROR, 14),
        (ErrorClass.CHECKSUM_MISMATCH, 15),
        (ErrorClass.SOURCE_UNAVAILABLE, 1),
        (ErrorClass.INTERNAL, 1),
    ],
)
def test_worker_errors_exit_with_their_code(run_file, tmp_path, monkeypatch, error_class, exit_code):
    def fail():
        raise WorkerError(error_class, "what went wrong")

    fake_command(monkeypatch, fail)
    code, message = invoke(run_file, tmp_path)
    assert code == exit_code
    assert message == {"ok": False, "error_class": error_class.value, "message": "what went wrong"}


def test_an_unexpected_exception_is_internal_with_a_one_line_message(run_file, tmp_path, monkeypatch):
    def crash():
        raise ValueError("first line\nsecond line")

    fake_command(monkeypatch, crash)
    code, message = invoke(run_file, tmp_path)
    assert code == 1
    assert message["error_class"] == "Internal"
    assert message["message"] == "ValueError: first line"
    assert "\n" not in message["message"]


def test_an_unexpected_exception_without_text(run_file, tmp_path, monkeypatch):
    def crash():
        raise RuntimeError()

    fake_command(monkeypatch, crash)
    assert invoke(run_file, tmp_path) == (1, {"ok": False, "error_class": "Internal", "message": "RuntimeError"})


def test_a_huge_error_message_still_fits_the_termination_message_and_keeps_its_cause(run_file, tmp_path, monkeypatch):
    def fail():
        raise WorkerError(
            ErrorClass.INVALID_INPUT, "boltz could not process the input: " + "x" * 20_000 + " KeyError: 'C16'"
        )

    fake_command(monkeypatch, fail)
    code, message = invoke(run_file, tmp_path)
    assert code == 10
    assert len((tmp_path / "termination-log").read_bytes()) <= TERMINATION_MESSAGE_LIMIT
    # Cut in the middle: what failed (the start) and why (boltz's exception, the end) both survive.
    assert message["message"].startswith("boltz could not process the input: xxx")
    assert message["message"].endswith("xxx KeyError: 'C16'") and " [...] " in message["message"]


def test_a_summary_with_many_structures_fits_and_keeps_its_scores():
    summary = RunSummary(
        ok=True,
        results_uri="s3://bucket/ns/name/1",
        confidence_score=0.9,
        structures=[f"a_long_record_identifier_model_{i}.cif" for i in range(500)],
    )
    text = summary.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert RunSummary.from_termination_message(text).confidence_score == 0.9


def test_an_unreadable_run_file_is_invalid_input(tmp_path):
    code, message = invoke(tmp_path / "absent.json", tmp_path)
    assert code == 10
    assert message["error_class"] == "InvalidInput" and "cannot read" in message["message"]


def test_a_malformed_run_file_names_the_field(tmp_path):
    run_file = tmp_path / "run.json"
    run_file.write_text(json.dumps({"kind": "populate", "contract": "v1", "models_dir": 3}))
    code, message = invoke(run_file, tmp_path)
    assert code == 10
    assert "populate.models_dir" in message["message"]


def test_a_run_of_another_kind_is_refused(run_file, tmp_path):
    code, message = invoke(run_file, tmp_path, command="predict")
    assert code == 10
    assert message["message"].endswith("describes a populate run, not predict")


def test_an_unwritable_termination_log_does_not_change_the_exit_code(run_file, tmp_path, monkeypatch, capsys):
    fake_command(monkeypatch, lambda: RunSummary(ok=True))
    code = cli.main(["populate", "--run", str(run_file), "--termination-log", str(tmp_path / "no" / "such" / "dir")])
    assert code == 0
    assert capsys.readouterr().out.strip().endswith('{"ok":true}')  # the summary also ends the log


def test_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train"])
    assert exit_info.value.code == 2

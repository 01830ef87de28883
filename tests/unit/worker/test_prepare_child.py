"""How prepare judges the process that runs boltz (prepare.run_child): killed by SIGKILL is the memory limit,
dying without an answer is internal, an answer is passed on."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from boltz_contract import ErrorClass, WorkerError
from boltz_worker.prepare.prepare import run_child


def fake_python(tmp_path: Path, script: str, monkeypatch) -> None:
    """BOLTZ_PYTHON as a shell script: $4 is the answer file (argv: -m MODULE REQUEST ANSWER)."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("BOLTZ_PYTHON", str(path))


def test_sigkill_is_the_memory_limit_naming_it(tmp_path, monkeypatch):
    fake_python(tmp_path, "kill -9 $$", monkeypatch)
    monkeypatch.setenv("BOLTZ_WORKER_MEMORY_BYTES", str(2 * 2**30))
    with pytest.raises(WorkerError) as raised:
        run_child({"input": "x"}, tmp_path)
    assert raised.value.error_class == ErrorClass.MEMORY_LIMIT_EXCEEDED
    assert "most likely by the container's memory limit (2.0 GiB)" in raised.value.message
    assert "(the chart value prepare.memory)" in raised.value.message


def test_dying_without_an_answer_is_internal(tmp_path, monkeypatch):
    fake_python(tmp_path, "echo Traceback >&2; exit 1", monkeypatch)
    with pytest.raises(WorkerError) as raised:
        run_child({"input": "x"}, tmp_path)
    assert raised.value.error_class == ErrorClass.INTERNAL
    assert "exited 1 without an answer" in raised.value.message


def test_the_answer_is_read_and_the_request_written(tmp_path, monkeypatch):
    answer = {"ok": True, "msa_server_calls": 2}
    fake_python(tmp_path, f'cp "$3" {tmp_path}/seen.json; echo \'{json.dumps(answer)}\' > "$4"', monkeypatch)
    assert run_child({"input": "in.yaml"}, tmp_path) == answer
    assert json.loads((tmp_path / "seen.json").read_text()) == {"input": "in.yaml"}

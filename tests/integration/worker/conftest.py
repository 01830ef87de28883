"""Fixtures for the worker's integration tests: the fake hub, model files, a ready model cache, the fake boltz,
and running the real CLI the way a Job's container does (run.json in, exit code and termination message out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from boltz_contract import BoltzGenModels
from boltz_worker import cli
from boltz_worker.model_cache.model_catalog import BOLTZGEN
from support.fake_boltz import fake_boltz_command
from support.fake_boltzgen import fake_boltzgen_command
from support.worker import (
    FakeHub,
    WorkerOutcome,
    make_boltzgen_files,
    make_model_files,
    serving,
    write_model_cache,
)


@pytest.fixture
def model_files() -> dict[str, bytes]:
    return make_model_files()


@pytest.fixture
def boltzgen_files() -> dict[str, dict[str, bytes]]:
    """The boltzgen bundle's stand-ins by repository: the model repo and the dataset repo holding mols.zip."""
    return make_boltzgen_files()


@pytest.fixture
def fake_hub(model_files, boltzgen_files):
    repos = {repo: dict(files) for repo, files in boltzgen_files.items()}
    with serving(FakeHub(files=dict(model_files), repos=repos)) as hub:
        yield hub


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """Retries without waiting; the policy's arithmetic is unit-tested."""
    monkeypatch.setenv("BOLTZ_WORKER_RETRY_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("BOLTZ_WORKER_DOWNLOAD_ATTEMPTS", "3")


@pytest.fixture
def run_worker(tmp_path):
    """Run the CLI in-process on a run model; the config dir holds run.json and the given input files."""

    def run(command: str, run_model, files: dict[str, str] | None = None, config_dir: Path | None = None):
        config = config_dir or tmp_path / "config"
        config.mkdir(parents=True, exist_ok=True)
        for name, text in (files or {}).items():
            (config / name).write_text(text)
        (config / "run.json").write_text(run_model.model_dump_json())
        termination = tmp_path / "termination-log"
        termination.unlink(missing_ok=True)
        code = cli.main([command, "--run", str(config / "run.json"), "--termination-log", str(termination)])
        return WorkerOutcome(exit_code=code, summary=json.loads(termination.read_text()))

    return run


@pytest.fixture
def model_cache(tmp_path, model_files) -> Path:
    return write_model_cache(tmp_path / "models" / "boltz2", model_files)


@pytest.fixture
def fake_boltz(monkeypatch, tmp_path):
    """Point the worker at the fake boltz; returns the file where it records its argv, cwd and env."""
    record = tmp_path / "fake-boltz-record.json"
    monkeypatch.setenv("BOLTZ_EXECUTABLE", fake_boltz_command())
    monkeypatch.setenv("FAKE_BOLTZ_RECORD", str(record))
    monkeypatch.setenv("FAKE_BOLTZ_MODE", "ok")
    monkeypatch.setenv("BOLTZ_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("BOLTZ_WORKER_CPUS", "3")
    return record


@pytest.fixture
def boltzgen_models(tmp_path) -> BoltzGenModels:
    cache = tmp_path / "models" / "boltzgen"
    cache.mkdir(parents=True)
    for i, name in enumerate(BOLTZGEN.files):
        (cache / name).write_bytes(bytes([i + 1]) * 1000)
    return BoltzGenModels(
        design_checkpoints=[str(cache / "boltzgen1_diverse.ckpt"), str(cache / "boltzgen1_adherence.ckpt")],
        inverse_fold_checkpoint=str(cache / "boltzgen1_ifold.ckpt"),
        folding_checkpoint=str(cache / "boltz2_conf_final.ckpt"),
        affinity_checkpoint=str(cache / "boltz2_aff.ckpt"),
        moldir=str(cache / "mols.zip"),
    )


@pytest.fixture
def fake_boltzgen(monkeypatch, tmp_path) -> Path:
    """Point the worker at the fake boltzgen; returns the file where it records one JSON line per invocation."""
    record = tmp_path / "fake-boltzgen-record.jsonl"
    monkeypatch.setenv("BOLTZGEN_EXECUTABLE", fake_boltzgen_command())
    monkeypatch.setenv("FAKE_BOLTZGEN_RECORD", str(record))
    monkeypatch.setenv("FAKE_BOLTZGEN_MODE", "ok")
    monkeypatch.setenv("BOLTZ_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("BOLTZ_WORKER_CPUS", "3")
    monkeypatch.setenv("BOLTZ_WORKER_MEMORY_BYTES", str(64 * 2**30))  # as a pod with the default 64Gi
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return record

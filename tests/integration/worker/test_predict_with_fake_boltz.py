"""`boltz-worker predict` end to end with the fake boltz: argv, every outcome, uploads read back from real S3 or a
results directory, the termination message and exit codes, and a read-only model cache left untouched."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from boltz_contract import (
    HuggingFaceSource,
    PopulateRun,
    PopulateSource,
    PredictionResult,
    PredictOptions,
    PredictRun,
    ResultsTarget,
    S3Download,
    S3Target,
)
from boltz_worker.boltz_runs import predict as predict_module
from boltz_worker.results.results_store import LocalDirResultsStore
from support.fake_boltz import AFFINITY_KEYS, CONFIDENCE_KEYS
from support.wait import wait_until
from support.worker import sha256

RECORD = "lig-complex"


def boltz_doc(affinity: bool = True, msa: str | None = "empty") -> dict:
    protein = {"id": "A", "sequence": "MADQLTEEQIAEFKEAFSLF"}
    if msa is not None:
        protein["msa"] = msa
    doc = {"version": 1, "sequences": [{"protein": protein}, {"ligand": {"id": "B", "smiles": "CC(=O)Oc1ccccc1"}}]}
    if affinity:
        doc["properties"] = [{"affinity": {"binder": "B"}}]
    return doc


def s3_target(bucket, prefix="ns/pred/1") -> ResultsTarget:
    return ResultsTarget(
        uri=f"s3://{bucket.name}/{prefix}",
        s3=S3Target(bucket=bucket.name, prefix=prefix, endpoint_url=bucket.endpoint_url, region=bucket.region),
    )


def local_target(directory: Path) -> ResultsTarget:
    return ResultsTarget(uri="pvc://results/ns/pred/1", local_dir=str(directory))


def predict_run(cache_dir: Path, results: ResultsTarget, affinity=True, **options) -> PredictRun:
    return PredictRun(
        record_id=RECORD,
        input_file=f"{RECORD}.yaml",
        options=PredictOptions(**options),
        cache_dir=str(cache_dir),
        results=results,
        affinity_binder="B" if affinity else None,
    )


def run_predict(run_worker, run: PredictRun, doc: dict):
    return run_worker("predict", run, files={run.input_file: yaml.safe_dump(doc, sort_keys=False)})


# ---------------------------------------------------------------------------------------------- success


def test_predict_uploads_everything_to_s3_with_result_json(model_cache, fake_boltz, s3_env, s3_bucket, run_worker):
    run = predict_run(model_cache, s3_target(s3_bucket), diffusion_samples=2)
    outcome = run_predict(run_worker, run, boltz_doc())

    assert outcome.exit_code == 0, outcome.summary
    summary = outcome.summary
    assert summary["ok"] is True
    assert summary["results_uri"] == f"s3://{s3_bucket.name}/ns/pred/1"
    assert summary["structures"] == [f"{RECORD}_model_0.cif", f"{RECORD}_model_1.cif"]
    assert (summary["confidence_score"], summary["ptm"], summary["iptm"]) == (0.9, 0.89, 0.88)
    assert summary["complex_plddt"] == 0.92
    assert (summary["affinity_pred_value"], summary["affinity_probability_binary"]) == (-1.25, 0.81)

    keys = s3_bucket.keys("ns/pred/1/")
    expected_names = (
        {f"{RECORD}_model_{k}.cif" for k in (0, 1)}
        | {f"confidence_{RECORD}_model_{k}.json" for k in (0, 1)}
        | {f"{kind}_{RECORD}_model_{k}.npz" for kind in ("plddt", "pae", "pde") for k in (0, 1)}
        | {f"affinity_{RECORD}.json", f"pre_affinity_{RECORD}.npz", f"input/{RECORD}.yaml", "result.json"}
    )
    assert {k.removeprefix("ns/pred/1/") for k in keys} == expected_names | {"report.html"}

    result = PredictionResult.model_validate_json(s3_bucket.read("ns/pred/1/result.json"))
    assert result.record_id == RECORD and result.results_uri == summary["results_uri"]
    assert {f.path for f in result.files} == expected_names - {"result.json"}
    for file in result.files:  # what result.json promises is what the store holds
        data = s3_bucket.read(f"ns/pred/1/{file.path}")
        assert (len(data), sha256(data)) == (file.bytes, file.sha256)
    assert result.structures == summary["structures"]
    assert [set(c) for c in result.confidence] == [CONFIDENCE_KEYS, CONFIDENCE_KEYS]
    assert result.confidence[0]["confidence_score"] > result.confidence[1]["confidence_score"]
    assert set(result.affinity) == AFFINITY_KEYS
    assert result.worker_version == "0.1.0"
    assert set(result.timings) == {"boltz", "upload", "report", "total"}
    # The HTML report: made even from the fake's atom-less structures (those parts say why they are missing).
    assert summary["report"] == result.report == "report.html"
    page = s3_bucket.read("ns/pred/1/report.html").decode()
    assert page.startswith("<!DOCTYPE html>") and "holds no atoms" in page
    assert yaml.safe_load(s3_bucket.read(f"ns/pred/1/input/{RECORD}.yaml")) == boltz_doc()


def test_boltz_gets_the_right_argv_environment_and_working_directory(
    model_cache, fake_boltz, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("MSA_API_KEY_VALUE", "msa-secret")
    run = predict_run(
        model_cache, local_target(tmp_path / "results"),
        use_msa_server=True, msa_server_url="http://msa.local", msa_api_key_header="X-API-Key",
        seed=11, use_kernels=False, output_format="pdb",
    )  # fmt: skip
    outcome = run_predict(run_worker, run, boltz_doc(msa=None))

    assert outcome.exit_code == 0, outcome.summary
    record = json.loads(fake_boltz.read_text())
    argv, work = record["argv"], tmp_path / "work"
    assert argv[:2] == ["predict", str(work / f"{RECORD}.yaml")]
    assert argv[argv.index("--cache") + 1] == str(model_cache)
    assert argv[argv.index("--out_dir") + 1] == str(work / "out")
    assert argv[argv.index("--num_workers") + 1] == "3" == argv[argv.index("--preprocessing-threads") + 1]
    assert {"--use_msa_server", "--no_kernels"} <= set(argv)
    assert argv[argv.index("--api_key_header") + 1] == "X-API-Key"
    assert "msa-secret" not in argv  # the key reaches boltz through its environment only
    assert record["env"]["MSA_API_KEY_VALUE"] == "msa-secret"
    assert record["env"]["PYTHONUNBUFFERED"] == "1" and record["env"]["HF_HUB_OFFLINE"] == "1"
    assert record["cwd"] == str(work)
    assert outcome.summary["structures"] == [f"{RECORD}_model_0.pdb"]


def test_results_on_a_pvc_directory(model_cache, fake_boltz, tmp_path, run_worker):
    results = tmp_path / "results" / "ns" / "pred" / "1"
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(results), affinity=False),
                          boltz_doc(affinity=False))  # fmt: skip

    assert outcome.exit_code == 0, outcome.summary
    assert outcome.summary["results_uri"] == "pvc://results/ns/pred/1"
    assert "affinity_pred_value" not in outcome.summary
    result = PredictionResult.model_validate_json((results / "result.json").read_text())
    for file in result.files:
        assert sha256((results / file.path).read_bytes()) == file.sha256
    assert (results / f"{RECORD}_model_0.cif").is_file()
    assert not list(results.rglob("*.tmp"))


def test_result_json_is_written_last(model_cache, fake_boltz, tmp_path, run_worker, monkeypatch):
    order: list[str] = []

    class RecordingStore(LocalDirResultsStore):
        def put_file(self, rel, local_path):
            order.append(rel)
            super().put_file(rel, local_path)

        def put_bytes(self, rel, data):
            order.append(rel)
            super().put_bytes(rel, data)

    monkeypatch.setattr(predict_module, "open_results_store", lambda t: RecordingStore(t.uri, Path(t.local_dir)))
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(tmp_path / "r")), boltz_doc())

    assert outcome.exit_code == 0
    assert order[-1] == "result.json" and order.count("result.json") == 1
    assert len(order) > 5


def test_relative_msa_paths_resolve_against_the_run_files(model_cache, fake_boltz, tmp_path, run_worker):
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.a3m").write_text(">query\nMADQLTEEQIAEFKEAFSLF\n")
    run = predict_run(model_cache, local_target(tmp_path / "r"))
    outcome = run_predict(run_worker, run, boltz_doc(msa="a.a3m"))

    assert outcome.exit_code == 0, outcome.summary
    staged = yaml.safe_load((tmp_path / "work" / f"{RECORD}.yaml").read_text())
    assert staged["sequences"][0]["protein"]["msa"] == str(config / "a.a3m")
    uploaded = yaml.safe_load((tmp_path / "r" / "input" / f"{RECORD}.yaml").read_text())
    assert uploaded["sequences"][0]["protein"]["msa"] == "a.a3m"  # the user's input, as given


def test_msa_downloaded_from_s3(model_cache, fake_boltz, tmp_path, s3_env, s3_bucket, run_worker):
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="inputs/a.a3m", Body=b">q\nMADQLTEEQIAEFKEAFSLF\n")
    dest = tmp_path / "work" / "inputs" / "a.a3m"
    uri = f"s3://{s3_bucket.name}/inputs/a.a3m"
    download = S3Download(uri=uri, dest=str(dest), endpoint_url=s3_bucket.endpoint_url)
    run = predict_run(model_cache, local_target(tmp_path / "r")).model_copy(update={"downloads": [download]})
    outcome = run_predict(run_worker, run, boltz_doc(msa=str(dest)))

    assert outcome.exit_code == 0, outcome.summary
    assert dest.read_bytes() == b">q\nMADQLTEEQIAEFKEAFSLF\n"


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "mode, affinity, exit_code, error_class, message",
    [
        ("preprocess_fail", True, 10, "InvalidInput", "could not process the input: Chain A has an invalid residue"),
        ("oom", False, 12, "GPUOutOfMemory", "in the structure step; try fewer options.diffusionSamples"),
        ("oom", True, 12, "GPUOutOfMemory", "in the structure step; try fewer options.diffusionSamples"),  # exit 1
        ("oom_affinity", True, 12, "GPUOutOfMemory", "in the affinity step; try fewer options.affinity.diffusionSamples"),
        ("cuda_error", True, 14, "GPUDeviceError", "CUDA error: an illegal memory access was encountered"),
        ("no_output", False, 1, "Internal", "boltz wrote no structure files"),
    ],
)  # fmt: skip
def test_boltz_failure_modes(
    model_cache, fake_boltz, s3_env, s3_bucket, run_worker, monkeypatch, mode, affinity, exit_code, error_class, message
):
    monkeypatch.setenv("FAKE_BOLTZ_MODE", mode)
    run = predict_run(model_cache, s3_target(s3_bucket), affinity=affinity)
    outcome = run_predict(run_worker, run, boltz_doc(affinity=affinity))

    assert outcome.exit_code == exit_code
    assert outcome.summary["ok"] is False
    assert outcome.summary["error_class"] == error_class
    assert message in outcome.summary["message"]
    assert s3_bucket.keys() == []  # nothing uploaded, in particular no result.json


def test_missing_affinity_is_caught_even_when_the_run_does_not_name_the_binder(
    model_cache, fake_boltz, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZ_MODE", "oom_affinity")
    run = predict_run(model_cache, local_target(tmp_path / "r"), affinity=False)  # affinity_binder unset
    outcome = run_predict(run_worker, run, boltz_doc(affinity=True))
    assert outcome.exit_code == 12
    assert not (tmp_path / "r" / "result.json").exists()


def test_invalid_input_fails_before_boltz_runs(model_cache, fake_boltz, tmp_path, run_worker):
    doc = boltz_doc()
    doc["sequences"][1]["ligand"]["smiles"] = "C" * 140
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(tmp_path / "r")), doc)

    assert outcome.exit_code == 10
    assert outcome.summary["message"] == (
        "invalid Boltz input: ligand B has 140 heavy atoms; affinity supports at most 128"
    )
    assert not fake_boltz.exists()


def test_missing_msas_without_the_msa_server_fail_early(model_cache, fake_boltz, tmp_path, run_worker):
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(tmp_path / "r")), boltz_doc(msa=None))
    assert outcome.exit_code == 10
    assert outcome.summary["message"].startswith("protein chains A have no msa and the MSA server is off")
    assert not fake_boltz.exists()


def test_an_input_file_that_is_not_there_is_invalid_input(model_cache, fake_boltz, tmp_path, run_worker):
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(tmp_path / "r")), boltz_doc(msa="x.a3m"))
    assert outcome.exit_code == 10
    assert "the input refers to x.a3m" in outcome.summary["message"]


def test_a_missing_download_names_its_uri(model_cache, fake_boltz, tmp_path, s3_env, s3_bucket, run_worker):
    uri = f"s3://{s3_bucket.name}/inputs/absent.a3m"
    download = S3Download(uri=uri, dest=str(tmp_path / "in" / "a.a3m"), endpoint_url=s3_bucket.endpoint_url)
    run = predict_run(model_cache, local_target(tmp_path / "r")).model_copy(update={"downloads": [download]})
    outcome = run_predict(run_worker, run, boltz_doc())
    assert outcome.exit_code == 10
    assert outcome.summary["message"].startswith(f"input file {uri} does not exist")


@pytest.mark.parametrize("missing", ["boltz2_aff.ckpt", "mols"])
def test_an_incomplete_model_cache_is_unusable(model_cache, fake_boltz, tmp_path, run_worker, missing):
    target = model_cache / missing
    if target.is_dir():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    else:
        target.unlink()
    outcome = run_predict(run_worker, predict_run(model_cache, local_target(tmp_path / "r")), boltz_doc())

    assert outcome.exit_code == 11
    assert outcome.summary["error_class"] == "ModelCacheUnusable"
    assert f"model cache at {model_cache} is unusable (missing {missing}" in outcome.summary["message"]
    assert not fake_boltz.exists()


def test_an_unreachable_results_store_is_a_results_store_error(model_cache, fake_boltz, tmp_path, s3_env, run_worker):
    target = ResultsTarget(
        uri="s3://nowhere/p", s3=S3Target(bucket="nowhere", prefix="p", endpoint_url="http://127.0.0.1:9")
    )
    outcome = run_predict(run_worker, predict_run(model_cache, target), boltz_doc())
    assert outcome.exit_code == 13
    assert outcome.summary["error_class"] == "ResultsStoreError"
    assert "s3://nowhere/p/" in outcome.summary["message"]


# ---------------------------------------------------------------------------------------------- process level


def test_the_cli_process_streams_boltz_output_and_exits_with_the_class_code(model_cache, fake_boltz, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    run = predict_run(model_cache, local_target(tmp_path / "r"), affinity=False)
    (config / "run.json").write_text(run.model_dump_json())
    (config / run.input_file).write_text(yaml.safe_dump(boltz_doc(affinity=False)))
    termination = tmp_path / "termination-log"
    env = {**os.environ, "FAKE_BOLTZ_MODE": "oom"}

    process = subprocess.run(
        [sys.executable, "-m", "boltz_worker.cli", "predict", "--run", str(config / "run.json"),
         "--termination-log", str(termination)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert process.returncode == 12, process.stderr
    assert "| WARNING: ran out of memory, skipping batch" in process.stdout  # boltz's lines reach our stdout
    assert json.loads(termination.read_text())["error_class"] == "GPUOutOfMemory"
    assert process.stdout.strip().splitlines()[-1] == termination.read_text()


def test_sigterm_to_the_worker_stops_boltz_too(model_cache, fake_boltz, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    run = predict_run(model_cache, local_target(tmp_path / "r"), affinity=False)
    (config / "run.json").write_text(run.model_dump_json())
    (config / run.input_file).write_text(yaml.safe_dump(boltz_doc(affinity=False)))
    termination = tmp_path / "termination-log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "boltz_worker.cli", "predict", "--run", str(config / "run.json"),
         "--termination-log", str(termination)],
        env={**os.environ, "FAKE_BOLTZ_MODE": "hang"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
    reader.start()
    boltz_pid = None
    try:
        wait_until(lambda: any("Running structure prediction" in line for line in lines), timeout=60,
                   what="boltz to start predicting")  # fmt: skip
        boltz_pid = json.loads(fake_boltz.read_text())["pid"]
        worker.send_signal(signal.SIGTERM)  # what the kubelet does when the pod is deleted
        assert worker.wait(timeout=60) == 1
        assert not process_alive(boltz_pid)  # boltz stopped with the worker, not orphaned
    finally:
        for pid in (worker.pid, boltz_pid):
            if pid and process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        worker.wait()
        reader.join(timeout=10)
    summary = json.loads(termination.read_text())
    assert summary["error_class"] == "Internal"
    assert summary["message"].startswith("boltz was killed by signal 15")


def test_predict_on_a_read_only_populated_cache_leaves_it_untouched(tmp_path, fake_hub, fake_boltz, run_worker):
    models = tmp_path / "models"
    source = PopulateSource(huggingface=HuggingFaceSource(endpoint=fake_hub.url))
    populate = PopulateRun(models_dir=str(models), source=source)
    assert run_worker("populate", populate).exit_code == 0
    make_read_only(models)
    before = snapshot(models)
    try:
        outcome = run_predict(run_worker, predict_run(models / "boltz2", local_target(tmp_path / "r")), boltz_doc())
        assert outcome.exit_code == 0, outcome.summary
        assert snapshot(models) == before
    finally:
        make_writable(models)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path with its mode, size, mtime and content hash: any write shows."""
    state = {}
    for path in sorted([root, *root.rglob("*")]):
        info = path.stat()
        digest = sha256(path.read_bytes()) if path.is_file() else None
        state[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return state

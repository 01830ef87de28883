"""`boltz-worker design` and `boltz-worker filter` end to end with the fake boltzgen against the real S3 server
(SeaweedFS) and a results directory: shard uploads, the completion marker written last, a re-run index doing no
work, merge inputs, the filter's uploads, and the top designs in the termination message."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from boltz_contract import (
    TERMINATION_MESSAGE_LIMIT,
    DesignOptions,
    DesignRun,
    ExitCode,
    FilterRun,
    ResultsTarget,
    S3Target,
)
from boltz_worker.boltzgen_runs import design as design_module
from support.worker import invocations

SPEC = "binder.yaml"
SPEC_DOC = {
    "entities": [
        {"protein": {"id": "B", "sequence": "80..120"}},
        {"file": {"path": "target.cif", "include": [{"chain": {"id": "A"}}]}},
    ]
}
CAMPAIGN = "ns/camp/1"


def s3_target(bucket) -> ResultsTarget:
    return ResultsTarget(
        uri=f"s3://{bucket.name}/{CAMPAIGN}",
        s3=S3Target(bucket=bucket.name, prefix=CAMPAIGN, endpoint_url=bucket.endpoint_url, region=bucket.region),
    )


def design_run(results, models, shard_index=None, num_designs=4, **options) -> DesignRun:
    return DesignRun(
        spec_file=SPEC, num_designs=num_designs, shard_index=shard_index, results=results, models=models,
        options=DesignOptions(**options),
    )  # fmt: skip


def run_design(run_worker, run, tmp_path, index: int):
    config = tmp_path / f"config-{index}"  # one ConfigMap per run, as in a pod
    files = {SPEC: yaml.safe_dump(SPEC_DOC), "target.cif": "data_target\n#\n"}
    return run_worker("design", run, files=files, config_dir=config)


def filter_run(results, models, num_shards=3, budget=3, **fields) -> FilterRun:
    return FilterRun(spec_file=SPEC, num_shards=num_shards, budget=budget, results=results, models=models, **fields)


def run_filter(run_worker, run, tmp_path):
    files = {SPEC: yaml.safe_dump(SPEC_DOC), "target.cif": "data_target\n#\n"}
    return run_worker("filter", run, files=files, config_dir=tmp_path / "config-filter")


def read_csv_bytes(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


# ---------------------------------------------------------------------------------------------- design


def test_design_shard_uploads_to_s3_and_writes_the_marker(
    boltzgen_models, fake_boltzgen, s3_env, s3_bucket, run_worker, tmp_path, monkeypatch
):
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    outcome = run_design(run_worker, design_run(s3_target(s3_bucket), boltzgen_models), tmp_path, 2)
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert outcome.summary == {
        "ok": True, "results_uri": f"s3://{s3_bucket.name}/{CAMPAIGN}/shards/2", "shard_index": 2,
        "designs_completed": 4, "designs_requested": 4,
    }  # fmt: skip
    keys = s3_bucket.keys(f"{CAMPAIGN}/shards/2/")
    rel = {k[len(f"{CAMPAIGN}/shards/2/") :] for k in keys}
    assert "_COMPLETE" in rel and "steps.yaml" in rel and "config/analysis.yaml" in rel
    assert "intermediate_designs/binder_0.cif" in rel and "intermediate_designs/binder_3.npz" in rel
    folded = "intermediate_designs_inverse_folded"
    for name in ("aggregate_metrics_analyze.csv", "per_target_metrics_analyze.csv", "ca_coords_sequences.pkl.gz",
                 "refold_cif/binder_1.cif", "refold_design_cif/binder_1.cif"):  # fmt: skip
        assert f"{folded}/{name}" in rel
    assert not any(r.startswith("final_ranked_designs/") for r in rel)  # filtering is the filter Job's
    marker = json.loads(s3_bucket.read(f"{CAMPAIGN}/shards/2/_COMPLETE"))
    assert marker["designs"] == 4 and marker["shard_index"] == 2 and marker["files"] == len(rel) - 1

    [call] = invocations(fake_boltzgen)
    argv = call["argv"]
    assert argv[:2] == ["run", str(tmp_path / "config-2" / SPEC)]
    assert argv[argv.index("--config") + 1 : argv.index("--config") + 3] == ["analysis", "num_processes=3"]
    assert argv[argv.index("--moldir") + 1] == boltzgen_models.moldir
    assert "filtering" not in argv and call["env"]["HF_HUB_OFFLINE"] == "1"


def test_a_rerun_index_does_no_work(boltzgen_models, fake_boltzgen, s3_env, s3_bucket, run_worker, tmp_path):
    run = design_run(s3_target(s3_bucket), boltzgen_models, shard_index=0)
    first = run_design(run_worker, run, tmp_path, 0)
    assert first.exit_code == ExitCode.OK
    before = {k: s3_bucket.read(k) for k in s3_bucket.keys(f"{CAMPAIGN}/shards/0/")}
    second = run_design(run_worker, run, tmp_path, 0)
    assert second.exit_code == ExitCode.OK
    assert second.summary["already_complete"] is True and second.summary["designs_completed"] == 4
    assert len(invocations(fake_boltzgen)) == 1  # boltzgen ran once
    assert {k: s3_bucket.read(k) for k in s3_bucket.keys(f"{CAMPAIGN}/shards/0/")} == before


def test_a_failed_upload_leaves_no_marker_and_the_retry_completes(
    boltzgen_models, fake_boltzgen, s3_env, s3_bucket, run_worker, tmp_path, monkeypatch
):
    from boltz_worker.results import results_store

    real_put = results_store.S3ResultsStore.put_file
    calls = {"n": 0}

    def flaky(self, rel, path):
        calls["n"] += 1
        if calls["n"] == 5:
            from boltz_contract import ErrorClass, WorkerError

            raise WorkerError(ErrorClass.RESULTS_STORE_ERROR, "connection reset")
        return real_put(self, rel, path)

    monkeypatch.setattr(results_store.S3ResultsStore, "put_file", flaky)
    run = design_run(s3_target(s3_bucket), boltzgen_models, shard_index=1)
    failed = run_design(run_worker, run, tmp_path, 1)
    assert failed.exit_code == ExitCode.RESULTS_STORE_ERROR
    assert s3_bucket.keys(f"{CAMPAIGN}/shards/1/") and f"{CAMPAIGN}/shards/1/_COMPLETE" not in s3_bucket.keys()
    retried = run_design(run_worker, run, tmp_path, 1)
    assert retried.exit_code == ExitCode.OK and "already_complete" not in retried.summary
    assert f"{CAMPAIGN}/shards/1/_COMPLETE" in s3_bucket.keys()
    assert len(invocations(fake_boltzgen)) == 2


@pytest.mark.parametrize(
    ("mode", "exit_code", "error_class"),
    [
        ("oom", ExitCode.GPU_OUT_OF_MEMORY, "GPUOutOfMemory"),
        ("no_cuda", ExitCode.GPU_DEVICE_ERROR, "GPUDeviceError"),
        ("no_output", ExitCode.RETRYABLE, "Internal"),
    ],
)
def test_boltzgen_failures_leave_no_marker(
    mode, exit_code, error_class, boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZGEN_MODE", mode)
    results = tmp_path / "results"
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(results)), boltzgen_models, shard_index=0)
    outcome = run_design(run_worker, run, tmp_path, 0)
    assert outcome.exit_code == exit_code and outcome.summary["error_class"] == error_class
    assert not (results / "shards" / "0" / "_COMPLETE").exists()


def test_missing_models_fail_fast_without_running_boltzgen(boltzgen_models, fake_boltzgen, tmp_path, run_worker):
    Path(boltzgen_models.inverse_fold_checkpoint).unlink()
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(tmp_path / "r")), boltzgen_models, shard_index=0)
    outcome = run_design(run_worker, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.MODEL_CACHE_UNUSABLE and "boltzgen1_ifold.ckpt" in outcome.summary["message"]
    assert invocations(fake_boltzgen) == []


def test_no_shard_index_anywhere_is_invalid_input(boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch):
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(tmp_path / "r")), boltzgen_models)
    assert run_design(run_worker, run, tmp_path, 0).exit_code == ExitCode.INVALID_INPUT


# ---------------------------------------------------------------------------------------------- filter


def test_filter_merges_complete_shards_and_reports_top_designs(
    boltzgen_models, fake_boltzgen, s3_env, s3_bucket, run_worker, tmp_path, monkeypatch
):
    target = s3_target(s3_bucket)
    for index in (0, 2):
        assert run_design(run_worker, design_run(target, boltzgen_models, index), tmp_path, index).exit_code == 0
    monkeypatch.setenv("FAKE_BOLTZGEN_MODE", "oom")  # shard 1 fails: no marker, left out of the merge
    assert run_design(run_worker, design_run(target, boltzgen_models, 1), tmp_path, 1).exit_code == 12
    monkeypatch.setenv("FAKE_BOLTZGEN_MODE", "ok")

    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, budget=3, top_designs=2), tmp_path)
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    summary = outcome.summary
    assert summary["results_uri"] == f"s3://{s3_bucket.name}/{CAMPAIGN}/final"
    assert summary["shards_merged"] == [0, 2] and summary["designs_completed"] == 8
    assert summary["designs_selected"] == 3
    top = summary["top_designs"]
    assert [t["rank"] for t in top] == [1, 2]
    assert all(t["id"].startswith(("shard-00000_binder_", "shard-00002_binder_")) for t in top)
    assert all(len(t["sequence"]) == 12 and "design_to_target_iptm" in t["metrics"] for t in top)

    merge, filtering = invocations(fake_boltzgen)[-2:]
    work = tmp_path / "work" / "boltzgen-filter"
    assert merge["argv"] == [
        "merge", str(work / "shards" / "shard-00000"), str(work / "shards" / "shard-00002"),
        "--output", str(work / "merged"),
    ]  # fmt: skip
    argv = filtering["argv"]
    assert argv[:4] == ["run", str(tmp_path / "config-filter" / SPEC), "--output", str(work / "merged")]
    assert argv[argv.index("--steps") + 1 :][:1] == ["filtering"] and argv[argv.index("--budget") + 1] == "3"
    assert filtering["env"]["HF_HUB_OFFLINE"] == "1"

    final = f"{CAMPAIGN}/final/"
    rel = {k[len(final) :] for k in s3_bucket.keys(final)}
    assert {"final_ranked_designs/all_designs_metrics.csv", "final_ranked_designs/final_designs_metrics_3.csv",
            "final_ranked_designs/results_overview.pdf", "merged/aggregate_metrics_analyze.csv",
            "merged/per_target_metrics_analyze.csv", "result.json"} <= rel  # fmt: skip
    selected = [r for r in rel if r.startswith("final_ranked_designs/final_3_designs/rank")]
    assert len(selected) == 3 and all(r.endswith(".cif") for r in selected)
    rows = read_csv_bytes(s3_bucket.read(final + "final_ranked_designs/final_designs_metrics_3.csv"))
    assert [r["id"] for r in rows][:2] == [t["id"] for t in top]
    merged_rows = read_csv_bytes(s3_bucket.read(final + "merged/aggregate_metrics_analyze.csv"))
    assert len(merged_rows) == 8 and {r["id"].split("_")[0] for r in merged_rows} == {"shard-00000", "shard-00002"}
    result = json.loads(s3_bucket.read(final + "result.json"))
    assert result["shards_merged"] == [0, 2] and len(result["top_designs"]) == 3
    # The HTML report beside final_ranked_designs/, each selected design linked to its structure there.
    assert summary["report"] == result["report"] == "report.html"
    page = s3_bucket.read(final + "report.html").decode()
    assert all(f'href="{r}"' in page for r in selected) and 'id="distributions"' in page


def test_filter_without_enough_complete_shards_is_invalid_input(boltzgen_models, fake_boltzgen, tmp_path, run_worker):
    target = ResultsTarget(uri="pvc://r/c", local_dir=str(tmp_path / "results"))
    assert run_design(run_worker, design_run(target, boltzgen_models, 0), tmp_path, 0).exit_code == 0
    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, num_shards=2, min_shards=2), tmp_path)
    assert outcome.exit_code == ExitCode.INVALID_INPUT and "1 of 2" in outcome.summary["message"]
    assert [c["argv"][0] for c in invocations(fake_boltzgen)] == ["run"]  # no merge, no filtering


def test_filter_on_a_results_directory_with_long_sequences_fits_the_termination_message(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZGEN_SEQUENCE_LENGTH", "400")
    results = tmp_path / "results"
    target = ResultsTarget(uri="pvc://results/ns/camp/1", local_dir=str(results))
    for index in range(2):
        run = design_run(target, boltzgen_models, index, num_designs=12)
        assert run_design(run_worker, run, tmp_path, index).exit_code == 0
    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, num_shards=2, budget=10, top_designs=10),
                         tmp_path)  # fmt: skip
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    text = (tmp_path / "termination-log").read_text()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    top = outcome.summary["top_designs"]
    assert 1 <= len(top) < 10 and [t["rank"] for t in top] == list(range(1, len(top) + 1))
    assert outcome.summary["designs_selected"] == 10 and outcome.summary["designs_completed"] == 24
    assert (results / "final" / "final_ranked_designs" / "final_designs_metrics_10.csv").is_file()
    result = json.loads((results / "final" / "result.json").read_text())
    assert len(result["top_designs"]) == 10  # the full list lives in the store


def test_design_module_names_match_boltzgen_layout():
    assert design_module.METRICS_CSV == "aggregate_metrics_analyze.csv"
    assert design_module.INVERSE_FOLDED_DIR == "intermediate_designs_inverse_folded"


# ---------------------------------------------------------------------------------------------- issue 15


def test_filter_merges_shards_of_two_inverse_folded_sequences_reading_only_what_it_needs(
    boltzgen_models, fake_boltzgen, s3_env, s3_bucket, run_worker, tmp_path
):
    """inverseFoldNumSequences 2: ids `<id>_0`, `<id>_1`. The merge must not see intermediate_designs/ (it would
    look for those ids there), and the filter reads only the tables and each design's structure and refolded one."""
    target = s3_target(s3_bucket)
    for index in (0, 1):
        run = design_run(target, boltzgen_models, index, inverse_fold_num_sequences=2)
        outcome = run_design(run_worker, run, tmp_path, index)
        assert outcome.exit_code == ExitCode.OK, outcome.summary
        assert outcome.summary["designs_completed"] == 8 and outcome.summary["designs_requested"] == 8

    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, num_shards=2, budget=3), tmp_path)
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert outcome.summary["designs_completed"] == 16 and outcome.summary["designs_selected"] == 3
    merged_rows = read_csv_bytes(s3_bucket.read(f"{CAMPAIGN}/final/merged/aggregate_metrics_analyze.csv"))
    expected = {f"shard-0000{s}_binder_{d}_{n}" for s in (0, 1) for d in range(4) for n in (0, 1)}
    assert {r["id"] for r in merged_rows} == expected

    shard = tmp_path / "work" / "boltzgen-filter" / "shards" / "shard-00000"
    got = sorted(p.relative_to(shard).as_posix() for p in shard.rglob("*") if p.is_file())
    folded = "intermediate_designs_inverse_folded"
    structures = [f"binder_{d}_{n}.cif" for d in range(4) for n in (0, 1)]
    assert got == sorted([f"{folded}/{name}" for name in (
        "aggregate_metrics_analyze.csv", "per_target_metrics_analyze.csv", "ca_coords_sequences.pkl.gz")]
        + [f"{folded}/{s}" for s in structures] + [f"{folded}/refold_cif/{s}" for s in structures])  # fmt: skip
    result = json.loads(s3_bucket.read(f"{CAMPAIGN}/final/result.json"))
    assert result["download"]["files"] == 2 * len(got)
    stored = sum(len(s3_bucket.read(k)) for k in s3_bucket.keys(f"{CAMPAIGN}/shards/"))
    assert 0 < result["download"]["bytes"] < stored


def test_a_deterministic_merge_failure_is_filter_failed_and_names_the_cause(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker
):
    results = tmp_path / "results"
    target = ResultsTarget(uri="pvc://r/c", local_dir=str(results))
    assert run_design(run_worker, design_run(target, boltzgen_models, 0), tmp_path, 0).exit_code == 0
    (results / "shards" / "0" / "intermediate_designs_inverse_folded" / "binder_2.cif").unlink()
    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, num_shards=1), tmp_path)
    assert outcome.exit_code == ExitCode.FILTER_FAILED == 16
    assert outcome.summary["error_class"] == "FilterFailed"
    message = outcome.summary["message"]
    assert "boltzgen merge" in message and "Required file missing during merge" in message and "binder_2.cif" in message
    assert not (results / "final" / "result.json").exists()


def test_filter_reports_designs_dropped_as_repeated_sequences(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZGEN_SEQUENCE_LENGTH", "1")  # 20 possible sequences for 24 designs: repeats
    results = tmp_path / "results"
    target = ResultsTarget(uri="pvc://r/c", local_dir=str(results))
    for index in range(2):
        assert (
            run_design(
                run_worker, design_run(target, boltzgen_models, index, num_designs=12), tmp_path, index
            ).exit_code
            == 0
        )
    outcome = run_filter(run_worker, filter_run(target, boltzgen_models, num_shards=2, budget=24), tmp_path)
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    with open(results / "final" / "merged" / "aggregate_metrics_analyze.csv", newline="") as f:
        sequences = [r["designed_sequence"] for r in csv.DictReader(f)]
    repeats = len(sequences) - len(set(sequences))
    assert repeats >= 4 and outcome.summary["designs_duplicates_dropped"] == repeats
    assert outcome.summary["designs_completed"] == 24 and outcome.summary["designs_selected"] == 24 - repeats
    result = json.loads((results / "final" / "result.json").read_text())
    assert result["designs_duplicates_dropped"] == repeats


def test_a_shard_short_of_designs_fails_as_host_out_of_memory(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZGEN_LOSE_DESIGNS", "2")
    results = tmp_path / "results"
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(results)), boltzgen_models, 0, num_designs=20)
    outcome = run_design(run_worker, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.HOST_OUT_OF_MEMORY == 17
    message = outcome.summary["message"]
    assert outcome.summary["error_class"] == "HostOutOfMemory"
    assert "produced 18 of 20 designs" in message and "at most 1 may be missing" in message
    assert "resources.memory" in message and "1.3 GB" in message and "2 time(s)" in message
    assert not (results / "shards" / "0" / "_COMPLETE").exists()


def test_a_shard_within_the_tolerance_completes_and_reports_produced_and_requested(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("FAKE_BOLTZGEN_LOSE_DESIGNS", "1")  # 1 of 20: within 5%
    results = tmp_path / "results"
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(results)), boltzgen_models, 0, num_designs=20)
    outcome = run_design(run_worker, run, tmp_path, 0)
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert outcome.summary["designs_completed"] == 19 and outcome.summary["designs_requested"] == 20
    marker = json.loads((results / "shards" / "0" / "_COMPLETE").read_text())
    assert marker["designs"] == 19 and marker["designs_requested"] == 20


def test_the_analysis_pool_is_no_larger_than_memory_holds(
    boltzgen_models, fake_boltzgen, tmp_path, run_worker, monkeypatch
):
    monkeypatch.setenv("BOLTZ_WORKER_MEMORY_BYTES", str(int(2.7e9)))  # 3 CPUs, memory for 2 processes of 1.3 GB
    run = design_run(ResultsTarget(uri="pvc://r/c", local_dir=str(tmp_path / "r")), boltzgen_models, 0)
    assert run_design(run_worker, run, tmp_path, 0).exit_code == ExitCode.OK
    [call] = invocations(fake_boltzgen)
    argv = call["argv"]
    assert argv[argv.index("--config") + 1 : argv.index("--config") + 3] == ["analysis", "num_processes=2"]

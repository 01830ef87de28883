"""BoltzScreen's reconciler: what each pass creates and writes, step by step (prepare on CPU, GPU shards as an
Indexed Job, rank on CPU), with the API layer replaced by a recorder (tests/integration/operator covers the real
one)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

import boltz_contract as contract
from boltz_contract import ErrorClass, RunSummary
from boltz_contract.msa import ChainMsa
from boltz_contract.screen import RankedLigand
from boltz_operator.api import BoltzScreenSpec
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import TerminatedWorker
from boltz_operator.reconcile.screen import reconcile_screen
from support.fake_kube import FakeKube
from support.objects import COMPLETE, JobBody, Resource, failed

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONFIG = OperatorConfig(worker_image="worker:1")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
EXAMPLE = yaml.safe_load((EXAMPLES / "screen.yaml").read_text())


def screen_body(status: dict | None = None, **spec) -> dict:
    body = {
        "apiVersion": "boltz-operator.io/v1alpha1",
        "kind": "BoltzScreen",
        "metadata": {"namespace": "lab", "name": "egfr", "uid": "s1", "generation": 1},
        "spec": {**copy.deepcopy(EXAMPLE["spec"]), "results": {"s3": {"uri": "s3://bucket/screens"}}, **spec},
        "status": status or {},
    }
    return body


def ready_cache() -> dict:
    return Resource.model_cache("default").phase("Ready").obj()


def job(name: str, conditions=None, **status) -> dict:
    return JobBody(name).conditions(conditions).status(**status).obj()


def worker(summary: RunSummary | None, exit_code: int = 0) -> TerminatedWorker:
    return TerminatedWorker(exit_code=exit_code, summary=summary, raw_message="", reason="Completed")


def run_pass(body: dict, kube: FakeKube, **jobs) -> dict:
    steps = {"prepare": "screen-prepare", "shards": "screen-shard", "rank": "screen-rank"}
    reconcile_screen(body, ready_cache(), {steps[k]: v for k, v in jobs.items()}, kube, CONFIG, NOW)
    return kube.status_patches[-1] if kube.status_patches else body["status"]


PREPARED = RunSummary(
    ok=True, ligands_total=9, ligands_failed=1, shards=3, msas=[ChainMsa(chain="A", source="fetched")]
)


def test_the_example_is_a_valid_spec_with_an_inline_library():
    spec = BoltzScreenSpec.model_validate(EXAMPLE["spec"])
    assert len(spec.library.inline) == 9 and spec.ligand_chain == "L" and spec.affinity


def test_first_the_cpu_prepare_job_with_the_target_and_the_library_in_one_configmap():
    kube = FakeKube()
    status = run_pass(screen_body(), kube)
    configmap, prepare = kube.created
    assert prepare.metadata.name == "egfr-screenprep"
    [container] = prepare.spec.template.spec.containers
    assert container.command == ["boltz-worker", "screen-prepare"]
    assert "nvidia.com/gpu" not in container.resources.limits
    run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    assert isinstance(run, contract.ScreenPrepareRun)
    assert [lig.id for lig in run.library_inline][:2] == ["erlotinib", "gefitinib"] and run.ligands_per_shard == 3
    assert run.msa_request.chains == ["A"]  # the target's MSA: once for the whole screen
    target = yaml.safe_load(configmap.data["prepare-target.yaml"])
    assert target["sequences"][-1] == {"ligand": {"id": "L", "smiles": "CCO"}}  # the screened ligand's stand-in
    assert target["properties"] == [{"affinity": {"binder": "L"}}]
    shard_target = yaml.safe_load(configmap.data["shard-target.yaml"])
    shard_run = contract.RUN_ADAPTER.validate_json(configmap.data["shard-run.json"])
    [download] = shard_run.downloads  # the MSA store's file, fetched to where the shard's target names it
    assert download.uri.startswith("s3://bucket/screens/msas/lab/") and download.uri.endswith("/0.csv")
    assert shard_target["sequences"][0]["protein"]["msa"] == download.dest
    assert not shard_run.options.use_msa_server
    assert status["phase"] == "Preparing"


def test_after_prepare_an_indexed_gpu_job_of_the_reported_shards_and_an_estimate():
    kube = FakeKube(worker(PREPARED))
    body = screen_body({"phase": "Preparing"}, parallelism=2)
    status = run_pass(body, kube, prepare=job("egfr-screenprep", COMPLETE, succeeded=1))
    [shards] = kube.created
    assert shards.metadata.name == "egfr-screen"
    assert (shards.spec.completion_mode, shards.spec.completions, shards.spec.parallelism) == ("Indexed", 3, 2)
    assert shards.spec.max_failed_indexes == 0  # 0.9 of 3 shards: all 3 needed
    [container] = shards.spec.template.spec.containers
    assert container.command == ["boltz-worker", "screen-shard"]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    models = next(m for m in container.volume_mounts if m.mount_path == contract.MODELS_DIR)
    assert models.read_only
    assert status["phase"] == "Screening" and status["ligands"] == "0/9"
    assert status["progress"] == {
        "ligandsTotal": 9, "ligandsDone": 0, "ligandsFailed": 1, "shardsTotal": 3, "shardsSucceeded": 0,
        "shardsFailed": 0,
    }  # fmt: skip
    # 8 ligands x 11 s + 3 shards x 31 s
    assert status["estimate"]["gpuHours"] == round((8 * 11 + 3 * 31) / 3600, 2)
    assert status["msa"] == [{"chain": "A", "source": "fetched"}]


def test_a_shard_job_whose_creating_pass_died_before_its_status_write_gets_that_status_from_prepare():
    """The operator killed between creating the shard Job and writing status (found by test_restart_safety): the
    next pass derives the counts again from prepare's summary instead of ranking 0 shards."""
    kube = FakeKube(worker(PREPARED), exists=True)
    body = screen_body({"phase": "Preparing"})
    prepared = job("egfr-screenprep", COMPLETE, succeeded=1)
    running = job("egfr-screen", active=1, ready=1, completedIndexes="0")
    outcome = reconcile_screen(
        body, ready_cache(), {"screen-prepare": prepared, "screen-shard": running}, kube, CONFIG, NOW
    )
    [status] = kube.status_patches
    assert status["phase"] == "Screening" and status["message"] == "1/3 shards done"
    assert status["progress"]["shardsTotal"] == 3 and status["ligands"] == "3/9"
    assert status["jobNames"] == ["egfr-screenprep", "egfr-screen"]
    assert not any(reason == "ShardJobCreated" for _, reason, _ in outcome.events)  # the Job was there already


def test_a_rank_job_whose_creating_pass_died_before_its_status_write_gets_the_shards_complete_condition():
    kube = FakeKube(exists=True)
    progress = {"ligandsTotal": 9, "ligandsFailed": 1, "shardsTotal": 3}
    body = screen_body({"phase": "Screening", "progress": progress, "jobNames": ["egfr-screenprep", "egfr-screen"]})
    status = run_pass(
        body, kube, shards=job("egfr-screen", COMPLETE, completedIndexes="0-2"), rank=job("egfr-rank", active=1)
    )
    assert status["phase"] == "Ranking" and status["ligands"] == "8/9"
    assert status["jobNames"] == ["egfr-screenprep", "egfr-screen", "egfr-rank"]
    assert [c["reason"] for c in status["conditions"] if c["type"] == "ShardsComplete"] == ["AllShardsSucceeded"]


def test_a_shard_job_without_its_prepare_job_or_counts_fails_with_the_cause():
    kube = FakeKube(exists=True)
    status = run_pass(screen_body({"phase": "Preparing"}), kube, shards=job("egfr-screen", active=1))
    assert status["phase"] == "Failed" and "prepare Job" in status["message"]


def test_a_spot_screen_tolerates_spot_taints_on_its_gpu_shards_only():
    kube = FakeKube(worker(PREPARED))
    status = run_pass(screen_body(spot=True), kube)
    [prepare] = kube.jobs
    status = run_pass(screen_body(status, spot=True), kube, prepare=job("egfr-screenprep", COMPLETE, succeeded=1))
    [_, shards] = kube.jobs
    keys = {t.key for t in shards.spec.template.spec.tolerations or []}
    assert {"cloud.google.com/gke-spot", "karpenter.sh/capacity-type"} <= keys
    assert not prepare.spec.template.spec.tolerations  # CPU steps go where the chart's prepare.* values say
    assert status["phase"] == "Screening"


def test_the_screened_ligands_stand_in_differs_from_a_fixed_ligand_of_the_target():
    """boltz makes ligands of one SMILES one entity with copies: a fixed ethanol (the first stand-in) must not merge
    with the screened ligand's stand-in (found by a new user: "affinity binder 'L' has several copies")."""
    from boltz_operator.builders.screen import target_spec

    target = copy.deepcopy(EXAMPLE["spec"]["target"])
    target["sequences"].append({"ligand": {"ids": ["B"], "smiles": "CCO"}})
    spec = BoltzScreenSpec.model_validate({**EXAMPLE["spec"], "target": target})
    ligands = {s.ligand.ids[0]: s.ligand.smiles for s in target_spec(spec).sequences if s.ligand}
    assert ligands["B"] == "CCO" and ligands["L"] not in (None, "CCO")


def test_progress_counts_the_ligands_of_finished_shards_and_writes_only_on_change():
    kube = FakeKube()
    progress = {"ligandsTotal": 9, "ligandsFailed": 1, "shardsTotal": 3, "ligandsDone": 0}
    body = screen_body({"phase": "Screening", "progress": progress, "jobNames": ["egfr-screenprep", "egfr-screen"]})
    running = job("egfr-screen", active=1, ready=1, completedIndexes="0,2")
    status = run_pass(body, kube, shards=running)
    assert status["ligands"] == "5/9"  # shards 0 and 2: 3 + 2 ligands (8 valid ligands, 3 per shard)
    assert status["progress"]["shardsSucceeded"] == 2
    again = FakeKube()
    run_pass({**body, "status": status}, again, shards=running)
    assert again.status_patches == []


def test_all_shards_done_creates_the_rank_job_on_cpu():
    kube = FakeKube()
    progress = {"ligandsTotal": 9, "ligandsFailed": 1, "shardsTotal": 3}
    body = screen_body({"phase": "Screening", "progress": progress, "jobNames": ["egfr-screenprep", "egfr-screen"]})
    status = run_pass(body, kube, shards=job("egfr-screen", COMPLETE, completedIndexes="0-2"))
    configmap, rank = kube.created
    run = contract.RUN_ADAPTER.validate_json(configmap.data["rank-run.json"])
    assert isinstance(run, contract.ScreenRankRun) and run.num_shards == 3 and run.top_k == 5
    assert rank.spec.template.spec.containers[0].command == ["boltz-worker", "screen-rank"]
    assert "nvidia.com/gpu" not in rank.spec.template.spec.containers[0].resources.limits
    assert not any(v.name == "models" for v in rank.spec.template.spec.volumes)
    assert status["phase"] == "Ranking" and status["ligands"] == "8/9"


def test_too_many_failed_shards_fail_the_screen_without_ranking_and_say_why_they_failed():
    crashed = RunSummary(ok=False, error_class=ErrorClass.GPU_DEVICE_ERROR, message="CUDA error: boom")
    kube = FakeKube(failed=[(1, worker(crashed, 17)), (2, worker(crashed, 17))])
    progress = {"ligandsTotal": 9, "ligandsFailed": 1, "shardsTotal": 3}
    body = screen_body({"phase": "Screening", "progress": progress})
    shards = job("egfr-screen", failed("FailedIndexes"), completedIndexes="0", failedIndexes="1-2")
    status = run_pass(body, kube, shards=shards)
    assert kube.created == []
    assert status["phase"] == "Failed" and "2 of 3 shards failed" in status["message"]
    assert status["message"].endswith("Shard errors: shard 1: GPUDeviceError: CUDA error: boom")  # once, not twice


def test_the_rank_summary_becomes_the_top_ligands_and_the_best_figure():
    top = [
        RankedLigand(rank=1, id="osimertinib", affinity_probability_binary=0.91, affinity_pred_value=-1.2),
        RankedLigand(rank=2, id="erlotinib", affinity_probability_binary=0.88, affinity_pred_value=-0.8),
    ]
    summary = RunSummary(
        ok=True, ligands_total=9, ligands_done=7, ligands_failed=2, top_ligands=top, report="report.html"
    )
    kube = FakeKube(worker(summary))
    body = screen_body({"phase": "Ranking", "results": {"uri": "s3://bucket/screens/lab/egfr/s1"}})
    status = run_pass(body, kube, rank=job("egfr-rank", COMPLETE, succeeded=1))
    assert status["phase"] == "Succeeded" and status["best"] == 0.91
    assert status["results"]["table"] == "s3://bucket/screens/lab/egfr/s1/ranked.csv"
    assert status["results"]["parquet"] == "s3://bucket/screens/lab/egfr/s1/ranked.parquet"
    assert status["results"]["report"] == "s3://bucket/screens/lab/egfr/s1/report.html"
    assert [t["id"] for t in status["results"]["topLigands"]] == ["osimertinib", "erlotinib"]
    assert status["ligands"] == "7/9" and status["progress"]["ligandsFailed"] == 2


def test_a_target_prepare_refuses_fails_the_screen_before_any_gpu():
    summary = RunSummary(ok=False, error_class=ErrorClass.INVALID_INPUT, message="target: chain A: ...")
    kube = FakeKube(worker(summary, 10))
    status = run_pass(
        screen_body({"phase": "Preparing"}), kube, prepare=job("egfr-screenprep", failed("PodFailurePolicy"))
    )
    assert kube.created == [] and status["phase"] == "Failed"
    assert status["message"] == "prepare: target: chain A: ... (no GPU was used)"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ligandChain": "A"}, "ligandChain must not be a chain id of the target"),
        ({"library": {"configMapKeyRef": {"name": "lib", "key": "ligands.txt"}}}, "library.format"),
    ],
)
def test_specs_the_model_refuses(change, expected):
    with pytest.raises(ValueError, match=expected):
        BoltzScreenSpec.model_validate({**EXAMPLE["spec"], **change})

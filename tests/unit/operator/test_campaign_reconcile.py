"""The BoltzGenCampaign reconciler's decisions, with the API layer replaced by a recorder: what it creates, the status
it writes for each thing it observes (model cache, design Job, filter Job), and that it writes nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from boltz_contract import ErrorClass, RunSummary, TopDesign
from boltz_operator.api.campaign import BoltzGenCampaignSpec
from boltz_operator.config import DefaultResultsStore, OperatorConfig
from boltz_operator.kube import TerminatedWorker
from boltz_operator.reconcile.campaign import reconcile_campaign
from boltz_operator.reconcile.estimate import REFERENCE_DESIGN_RESIDUES, designed_residues, gpu_hour_estimate
from boltz_operator.reconcile.jobs import count_indexes
from support.fake_kube import FakeKube
from support.objects import COMPLETE, JobBody, Resource, failed

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
CONFIG = OperatorConfig(worker_image="worker:1", boltzgen_worker_image="worker-boltzgen:1")
BASE = "s3://bucket/campaigns/lab/pdl1/u1"


def campaign_body(status: dict | None = None, generation: int = 1, **spec_changes) -> dict:
    return Resource.campaign("pdl1").spec(**spec_changes).generation(generation).status(status).obj()


def cache_body(phase: str | None = "Ready", bundles=("boltzgen",), message: str | None = None) -> dict:
    return Resource.model_cache("boltzgen", tuple(bundles)).phase(phase, message).obj()


def design_job(conditions=None, **status) -> dict:
    return JobBody("pdl1-design").conditions(conditions).status(**status).obj()


def filter_job(conditions=None, **status) -> dict:
    return JobBody("pdl1-filter").conditions(conditions).status(**status).obj()


def shard_failure(error_class: ErrorClass, message: str, exit_code: int = 1) -> TerminatedWorker:
    summary = RunSummary(ok=False, error_class=error_class, message=message)
    return TerminatedWorker(exit_code=exit_code, summary=summary, raw_message="", reason="Error")


def condition(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


def run(body, cache=None, design=None, filter_=None, kube=None, now=NOW, in_flight=frozenset(), config=CONFIG):
    kube = kube or FakeKube()
    outcome = reconcile_campaign(body, cache, design, filter_, kube, config, now, in_flight=in_flight)
    # Whatever the pass did, it wrote this campaign's status and asked about this campaign's design Job's shards.
    assert {(w.plural, w.namespace, w.name) for w in kube.status_writes} <= {("boltzgencampaigns", "lab", "pdl1")}
    assert {job for call, _, job in kube.asked if call == "failed_workers"} <= {"pdl1-design"}
    return kube, outcome


def designing_status() -> dict:
    """The status the first pass writes when it creates the design Job."""
    kube, _ = run(campaign_body(), cache_body())
    return kube.status_patches[-1]


def filtering_status() -> dict:
    kube, _ = run(
        campaign_body(status=designing_status()),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19", succeeded=20),
    )
    return kube.status_patches[-1]


# ---------------------------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    ("indexes", "count"),
    [(None, 0), ("", 0), ("0", 1), ("0-3,5,7-8", 7), ("1,3-5,7", 5), ("0-19", 20), ("0-999", 1000)],
)
def test_count_indexes(indexes, count):
    assert count_indexes(indexes) == count


def spec_of(*entities, num_designs: int = 1000) -> BoltzGenCampaignSpec:
    return BoltzGenCampaignSpec.model_validate({"designSpec": {"entities": list(entities)}, "numDesigns": num_designs})


def protein(sequence: str, ids=("B",)) -> dict:
    return {"protein": {"ids": list(ids), "sequence": sequence}}


TARGET = {"file": {"s3": {"uri": "s3://targets/6m1u.cif"}, "design": [{"chain": {"id": "A", "resIndex": "1..50"}}]}}


@pytest.mark.parametrize(
    ("entities", "residues"),
    [
        ([protein("80..140"), TARGET], 110),
        ([protein("17")], 17),
        ([protein("3..5C6C3")], 13),  # 4 (midpoint of 3..5) + 6 + 3 designed; the Cs are fixed
        ([protein("15..20AAAAAAVTTTT18PPP")], 35.5),
        ([protein("3..5C6C3", ids=("A", "B", "C"))], 39),  # every copy is designed
        ([protein("80..140"), protein("10", ids=("C",)), protein("MKTAYIAKQR", ids=("D",))], 120),
        ([protein("MKTAYIAKQR"), {"ligand": {"ids": ["L"], "ccd": "SAH"}}, TARGET], 0),  # nothing designed
    ],
)
def test_designed_residues(entities, residues):
    assert designed_residues(spec_of(*entities)) == residues


def test_the_estimate_scales_with_designs_length_and_seconds_per_design():
    binder = spec_of(protein("80..120"), TARGET, num_designs=1000)  # 100 designed residues: the reference length
    estimate = gpu_hour_estimate(binder, 36)
    assert estimate.gpu_hours == 10.0  # 1000 x 36 s
    assert gpu_hour_estimate(spec_of(protein("80..120"), num_designs=2000), 36).gpu_hours == 20.0
    assert gpu_hour_estimate(binder, 72).gpu_hours == 20.0
    assert gpu_hour_estimate(spec_of(protein("190..210"), num_designs=1000), 36).gpu_hours == 20.0  # twice as long
    assert "36 GPU-seconds per design" in estimate.basis and "100 designed residues per design" in estimate.basis
    # The default figure: 54 s per design of 100 residues; the binder example's 80..140 is 110.
    example = BoltzGenCampaignSpec.model_validate(campaign_body()["spec"])
    assert gpu_hour_estimate(example, CONFIG.boltzgen_gpu_seconds_per_design).gpu_hours == 33.0  # 2000 x 54 x 1.1


def test_without_a_designed_protein_the_estimate_assumes_the_reference_length_and_says_so():
    redesign = spec_of(protein("MKTAYIAKQR"), TARGET, num_designs=500)
    estimate = gpu_hour_estimate(redesign, 72)
    assert estimate.gpu_hours == 10.0  # 500 x 72 s at 100 residues
    assert f"no designed protein length in the spec: {REFERENCE_DESIGN_RESIDUES} assumed" in estimate.basis


# ---------------------------------------------------------------------------------------------- invalid / waiting


def test_an_invalid_spec_fails_with_the_field_path_and_creates_nothing():
    kube, outcome = run(campaign_body(numDesigns=0), cache_body())
    assert kube.created == []
    [status] = kube.status_patches
    assert status["phase"] == "Failed"
    assert status["message"].startswith("invalid spec: spec.numDesigns:")
    failed_condition = condition(status, "Failed")
    assert failed_condition["reason"] == "InvalidSpec" and failed_condition["status"] == "True"
    assert status["observedGeneration"] == 1 and status["completionTime"] == "2026-11-23T12:00:00Z"
    bad_file = campaign_body(designSpec={"entities": [{"file": {"configMapKeyRef": {"name": "t", "key": "t.txt"}}}]})
    kube, _ = run(bad_file, cache_body())
    message = kube.status_patches[-1]["message"]
    assert message.startswith("invalid spec: spec.designSpec.entities.0.file.configMapKeyRef")
    assert ".cif or .pdb" in message and kube.created == []


def test_an_invalid_spec_is_written_once_not_on_every_pass():
    # Each write is a watch event and so another pass: a status that changed with the clock would loop.
    kube, _ = run(campaign_body(numDesigns=0), cache_body())
    again, _ = run(campaign_body(status=kube.status_patches[-1], numDesigns=0), cache_body(), now=LATER)
    assert again.status_patches == [] and again.created == []


def test_parallelism_above_the_automatic_shard_count_is_accepted_and_capped():
    # The CRD admits it (its rule compares parallelism with an explicit count only) and parallelism is mutable:
    # the operator must not fail a running campaign over it.
    body = campaign_body(shards="auto", numDesigns=1000, parallelism=50)  # auto: 10 shards
    kube, _ = run(body, cache_body())
    [job_] = kube.jobs
    assert (job_.spec.completions, job_.spec.parallelism) == (10, 10)
    status = kube.status_patches[-1]
    assert status["phase"] == "Pending"
    edited = campaign_body(status=status, generation=2, shards="auto", numDesigns=1000, parallelism=500)
    kube, _ = run(edited, cache_body(), design_job(completedIndexes="0-1", active=8, ready=8))
    assert kube.status_patches[-1]["phase"] == "Designing"


@pytest.mark.parametrize(
    ("cache", "reason", "event_type", "words"),
    [
        (None, "ModelCacheNotFound", "Normal", "not found"),
        (cache_body(bundles=("boltz2",)), "ModelCacheLacksBundle", "Warning", "boltzgen bundle"),
        (cache_body("Failed", message="sha256 mismatch"), "ModelCacheFailed", "Warning", "sha256 mismatch"),
        (cache_body("Populating"), "ModelCacheNotReady", "Normal", "Populating"),
    ],
)
def test_without_a_ready_boltzgen_cache_it_waits_and_creates_nothing(cache, reason, event_type, words):
    kube, outcome = run(campaign_body(), cache)
    assert kube.created == [] and not outcome.created_job
    [status] = kube.status_patches
    assert status["phase"] == "WaitingForModelCache"
    ready = condition(status, "ModelCacheReady")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert words in status["message"] and "'boltzgen'" in status["message"]
    assert outcome.events == [(event_type, reason, status["message"])]
    assert status["estimate"]["gpuHours"] == 33.0  # written before anything runs
    assert status["progress"] == {
        "shardsTotal": 20,
        "shardsSucceeded": 0,
        "shardsFailed": 0,
        "shardsRunning": 0,
        "designsRequested": 2000,
        "designsCompleted": 0,
    }
    assert status["shards"] == "0/20"
    # The same wait again: no new write, no repeated event.
    again, outcome = run(campaign_body(status=status), cache)
    assert again.status_patches == [] and again.created == [] and outcome.events == []


def test_no_results_store_fails():
    body = campaign_body()
    del body["spec"]["results"]
    kube, outcome = run(body, cache_body())
    assert kube.created == []
    status = kube.status_patches[-1]
    assert status["phase"] == "Failed" and condition(status, "Failed")["reason"] == "NoResultsStore"
    assert outcome.events[0][:2] == ("Warning", "NoResultsStore")
    default = CONFIG.model_copy(update={"default_results": DefaultResultsStore(s3_uri="s3://defaults/runs")})
    kube, _ = run(body, cache_body(), config=default)
    assert kube.status_patches[-1]["results"] == {"uri": "s3://defaults/runs/lab/pdl1/u1", "topDesigns": []}


# ---------------------------------------------------------------------------------------------- designing


def test_a_ready_cache_creates_the_configmap_then_the_design_job():
    kube, outcome = run(campaign_body(), cache_body())
    assert [type(o).__name__ for o in kube.created] == ["V1ConfigMap", "V1Job"]
    configmap, job_ = kube.created
    assert configmap.metadata.name == "pdl1-campaign-run"
    assert job_.metadata.name == "pdl1-design" and job_.spec.completion_mode == "Indexed"
    assert job_.spec.completions == 20 and job_.spec.max_failed_indexes == 2
    claim = next(v for v in job_.spec.template.spec.volumes if v.name == "models").persistent_volume_claim
    assert claim.claim_name == "boltzgen-models"
    assert outcome.created_job and outcome.created_step == "design"
    [status] = kube.status_patches
    assert status["phase"] == "Pending" and status["message"] == "waiting for GPUs"  # Designing once a pod runs
    assert status["jobNames"] == ["pdl1-design"]
    assert status["results"] == {"uri": BASE, "topDesigns": []}
    assert condition(status, "ModelCacheReady")["status"] == "True"
    assert condition(status, "DesignJobCreated")["reason"] == "Created"
    assert status["estimate"]["gpuHours"] == 33.0 and "54 GPU-seconds" in status["estimate"]["basis"]
    assert [e[1] for e in outcome.events] == ["DesignJobCreated"]
    assert "20 shards of about 100 designs" in outcome.events[0][2]


def test_a_cache_that_becomes_ready_moves_the_condition_to_true():
    waiting = run(campaign_body(), None)[0].status_patches[-1]
    kube, _ = run(campaign_body(status=waiting), cache_body(), now=LATER)
    status = kube.status_patches[-1]
    ready = condition(status, "ModelCacheReady")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("True", "Ready", "2026-11-23T13:00:00Z")
    assert status["estimate"] == waiting["estimate"]


def test_a_design_job_this_process_just_created_is_not_created_again():
    kube, outcome = run(campaign_body(status=designing_status()), cache_body(), in_flight=frozenset({"design"}))
    assert kube.created == [] and kube.status_patches == [] and not outcome.created_job
    assert outcome.phase.value == "Pending"


def test_progress_while_designing_comes_from_the_indexed_jobs_indexes():
    body = campaign_body(status=designing_status())
    running = design_job(
        completedIndexes="0-3,5",
        failedIndexes="7",
        active=4,
        ready=4,
        succeeded=5,
        failed=1,
        startTime="2026-11-23T12:01:00Z",
    )
    kube, outcome = run(body, cache_body(), running, now=LATER)
    assert kube.created == []
    status = kube.status_patches[-1]
    assert status["phase"] == "Designing"
    assert status["progress"] == {
        "shardsTotal": 20,
        "shardsSucceeded": 5,
        "shardsFailed": 1,
        "shardsRunning": 4,
        "designsRequested": 2000,
        "designsCompleted": 500,
    }
    assert status["shards"] == "5/20" and status["startTime"] == "2026-11-23T12:01:00Z"
    assert status["message"] == "5/20 shards done, 1 failed, 4 running"
    # The same observation again writes nothing.
    again, _ = run(campaign_body(status=status), cache_body(), running, now=LATER)
    assert again.status_patches == [] and again.created == []


def test_a_design_job_without_running_pods_is_pending_and_a_suspended_one_says_it_is_queued():
    kube, _ = run(campaign_body(status=designing_status()), cache_body(), JobBody("pdl1-design").suspended().obj())
    status = kube.status_patches[-1]
    assert status["phase"] == "Pending" and status["message"] == "the design Job is suspended (queued, e.g. by Kueue)"
    kube, _ = run(campaign_body(status=status), cache_body(), design_job(active=20))  # pods, none ready yet
    assert kube.status_patches[-1]["phase"] == "Pending"
    assert kube.status_patches[-1]["message"] == "waiting for GPUs"
    # Shards that finished before Kueue suspended the Job again: still designing, with its progress.
    kube, _ = run(
        campaign_body(status=status),
        cache_body(),
        JobBody("pdl1-design").suspended().status(completedIndexes="0-2").obj(),
    )
    assert kube.status_patches[-1]["phase"] == "Designing"
    assert kube.status_patches[-1]["message"] == "3/20 shards done, 0 running"


def test_all_shards_done_creates_the_filter_job_and_filters():
    body = campaign_body(status=designing_status())
    kube, outcome = run(body, cache_body(), design_job(COMPLETE, completedIndexes="0-19", succeeded=20))
    [filter_] = kube.jobs
    assert filter_.metadata.name == "pdl1-filter"
    assert filter_.spec.template.spec.containers[0].command == ["boltz-worker", "filter"]
    assert outcome.created_job and outcome.created_step == "filter"
    status = kube.status_patches[-1]
    assert status["phase"] == "Filtering" and status["jobNames"] == ["pdl1-design", "pdl1-filter"]
    done = condition(status, "DesignsComplete")
    assert (done["status"], done["reason"], done["message"]) == (
        "True",
        "AllShardsSucceeded",
        "all 20 shards succeeded",
    )
    assert condition(status, "FilterJobCreated")["status"] == "True"
    assert status["progress"]["designsCompleted"] == 2000 and status["shards"] == "20/20"
    assert [e[1] for e in outcome.events] == ["FilterJobCreated"]


def test_enough_shards_after_some_failed_goes_on_to_filtering_with_the_shard_errors():
    body = campaign_body(status=designing_status())
    errors = [
        (19, shard_failure(ErrorClass.GPU_DEVICE_ERROR, "CUDA error: an illegal memory access", 14)),
        (19, shard_failure(ErrorClass.GPU_DEVICE_ERROR, "CUDA error: an illegal memory access", 14)),
    ]
    kube = FakeKube(failed=errors)
    # 19 of 20 succeeded, 18 needed: the Job ends Failed (FailedIndexes) but the campaign goes on.
    design = design_job(failed("FailedIndexes"), completedIndexes="0-18", failedIndexes="19", succeeded=19, failed=3)
    _, outcome = run(body, cache_body(), design, kube=kube)
    assert [j.metadata.name for j in kube.jobs] == ["pdl1-filter"]
    status = kube.status_patches[-1]
    assert status["phase"] == "Filtering"
    done = condition(status, "DesignsComplete")
    assert (done["status"], done["reason"]) == ("True", "PartialSuccess")
    assert done["message"].startswith("19/20 shards succeeded (1 failed; at least 18 needed)")
    assert done["message"].endswith("Shard errors: shard 19: GPUDeviceError: CUDA error: an illegal memory access")
    assert status["progress"]["shardsFailed"] == 1 and status["shards"] == "19/20"
    assert ("Warning", "PartialSuccess", done["message"]) in outcome.events
    assert "Failed" not in [c["type"] for c in status["conditions"]]


@pytest.mark.parametrize("reason", ["MaxFailedIndexesExceeded", "FailedIndexes"])
def test_too_many_failed_shards_fail_the_campaign_quoting_the_shards(reason):
    body = campaign_body(status=designing_status())
    oom = shard_failure(ErrorClass.GPU_OUT_OF_MEMORY, "CUDA out of memory. Tried to allocate 2.00 GiB", 12)
    crash = TerminatedWorker(exit_code=137, summary=None, raw_message="x" * 300 + "Killed", reason="OOMKilled")
    kube = FakeKube(failed=[(3, oom), (7, oom), (9, crash)])
    design = design_job(failed(reason), completedIndexes="0-2,4-6,8", failedIndexes="3,7,9", succeeded=7, failed=9)
    _, outcome = run(body, cache_body(), design, kube=kube)
    assert kube.created == []
    status = kube.status_patches[-1]
    assert status["phase"] == "Failed"
    failure = condition(status, "Failed")
    assert failure["reason"] == "TooManyShardsFailed"
    message = status["message"]
    assert message.startswith(
        "3 of 20 shards failed after 2 retries each; 7 succeeded, at least 18 needed (minSuccessfulShardFraction 0.9)"
    )
    # One line per distinct error: shard 7 repeats shard 3's; the raw log is cut to its last 200 characters.
    assert message.endswith(
        "Shard errors: shard 3: GPUOutOfMemory: CUDA out of memory. Tried to allocate 2.00 GiB; "
        "shard 9: exit code 137: " + ("x" * 194 + "Killed")
    )
    assert status["completionTime"] == "2026-11-23T12:00:00Z"
    assert outcome.events == [("Warning", "TooManyShardsFailed", message)]


def test_shard_errors_quote_at_most_five_distinct_errors():
    body = campaign_body(status=designing_status())
    errors = [(i, shard_failure(ErrorClass.INTERNAL, f"error {i}")) for i in range(10)]
    kube = FakeKube(failed=errors)
    run(body, cache_body(), design_job(failed("MaxFailedIndexesExceeded"), failedIndexes="0-9"), kube=kube)
    message = kube.status_patches[-1]["message"]
    assert "shard 4: Internal: error 4" in message and "shard 5" not in message
    assert "10 of 20 shards failed" in message and "0 succeeded" in message


def test_failed_shards_without_pods_say_so():
    kube = FakeKube(failed=[])
    run(
        campaign_body(status=designing_status()),
        cache_body(),
        design_job(failed("MaxFailedIndexesExceeded"), completedIndexes="0", failedIndexes="1-3"),
        kube=kube,
    )
    assert kube.status_patches[-1]["message"].endswith("Shard errors: none recorded (pods gone?)")


def test_a_design_job_past_its_deadline_times_out():
    body = campaign_body(status=designing_status(), timeoutSeconds=3600)
    kube, outcome = run(body, cache_body(), design_job(failed("DeadlineExceeded"), completedIndexes="0-18"))
    status = kube.status_patches[-1]
    assert status["phase"] == "Failed" and condition(status, "Failed")["reason"] == "Timeout"
    assert status["message"] == "design Job failed: timed out after 3600s (spec.timeoutSeconds); the run was stopped"
    assert kube.created == [] and outcome.events[0][:2] == ("Warning", "Timeout")


def test_invalid_input_in_a_shard_fails_the_campaign_with_the_workers_words():
    worker = shard_failure(ErrorClass.INVALID_INPUT, "input file s3://targets/6m1u.cif does not exist (404)", 10)
    kube = FakeKube(worker=worker)
    run(campaign_body(status=designing_status()), cache_body(), design_job(failed("PodFailurePolicy")), kube=kube)
    status = kube.status_patches[-1]
    assert condition(status, "Failed")["reason"] == "InvalidInput"
    assert status["message"] == "design Job failed: input file s3://targets/6m1u.cif does not exist (404)"


def test_designs_done_but_the_cache_gone_waits_to_filter():
    body = campaign_body(status=designing_status())
    kube, outcome = run(body, None, design_job(COMPLETE, completedIndexes="0-19"))
    assert kube.created == [] and not outcome.created_job
    status = kube.status_patches[-1]
    assert status["phase"] == "Designing"
    assert status["message"] == "all 20 shards succeeded; waiting for model cache 'boltzgen' to filter"
    assert condition(status, "DesignsComplete")["status"] == "True"


def test_a_filter_job_this_process_just_created_is_not_created_again():
    body = campaign_body(status=filtering_status())
    kube, outcome = run(
        body, cache_body(), design_job(COMPLETE, completedIndexes="0-19"), None, in_flight=frozenset({"filter"})
    )
    assert kube.created == [] and kube.status_patches == [] and not outcome.created_job
    assert outcome.phase.value == "Filtering"


# ---------------------------------------------------------------------------------------------- filtering


def test_a_running_filter_job_keeps_filtering_and_writes_nothing_new():
    status = filtering_status()
    design = design_job(COMPLETE, completedIndexes="0-19")
    kube, _ = run(campaign_body(status=status), cache_body(), design, filter_job(active=1, ready=1), now=LATER)
    assert kube.created == [] and kube.status_patches == []


def test_the_design_job_gone_while_filtering_is_not_recreated():
    # The design Job's TTL (jobTtlSeconds after it finished) can run out while the filter Job waits in a queue or
    # runs: the campaign must go on with the filter Job, not start designing again.
    status = filtering_status()
    kube, outcome = run(campaign_body(status=status), cache_body(), None, filter_job(active=1, ready=1), now=LATER)
    assert kube.created == [] and not outcome.created_job
    assert kube.status_patches == [] and outcome.phase.value == "Filtering"  # its progress stays as it was
    # ...and the filter's result still ends the campaign.
    summary = RunSummary(ok=True, designs_completed=2000, designs_selected=50, shards_merged=list(range(20)))
    kube = FakeKube(worker=TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    run(campaign_body(status=status), cache_body(), None, filter_job(COMPLETE, succeeded=1), kube=kube, now=LATER)
    assert kube.created == [] and kube.status_patches[-1]["phase"] == "Succeeded"
    assert kube.status_patches[-1]["jobNames"] == ["pdl1-design", "pdl1-filter"]


def top(rank: int, iptm: float) -> TopDesign:
    return TopDesign(
        rank=rank,
        id=f"shard-00003_binder_{rank}",
        sequence="MKTAYIAKQR",
        metrics={"design_to_target_iptm": iptm, "filter_rmsd": 1.2},
    )


def test_a_succeeded_filter_becomes_the_results_and_top_designs():
    summary = RunSummary(
        ok=True,
        results_uri=f"{BASE}/final",
        designs_completed=1987,
        designs_selected=50,
        shards_merged=list(range(20)),
        top_designs=[top(1, 0.91), top(2, 0.88)],
        report="report.html",
    )
    kube = FakeKube(worker=TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    done = filter_job(COMPLETE, succeeded=1, completionTime="2026-11-23T14:00:00Z")
    _, outcome = run(
        campaign_body(status=filtering_status()),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19"),
        done,
        kube=kube,
        now=LATER,
    )
    status = kube.status_patches[-1]
    assert status["phase"] == "Succeeded" and status["completionTime"] == "2026-11-23T14:00:00Z"
    assert status["results"] == {
        "uri": BASE,
        "finalDesignsUri": f"{BASE}/final/final_ranked_designs/final_50_designs",
        "metricsCsvUri": f"{BASE}/final/final_ranked_designs/all_designs_metrics.csv",
        "topDesigns": [
            {"rank": 1, "id": "shard-00003_binder_1", "sequence": "MKTAYIAKQR",
             "metrics": {"design_to_target_iptm": 0.91, "filter_rmsd": 1.2}},
            {"rank": 2, "id": "shard-00003_binder_2", "sequence": "MKTAYIAKQR",
             "metrics": {"design_to_target_iptm": 0.88, "filter_rmsd": 1.2}},
        ],
        "report": f"{BASE}/final/report.html",
    }  # fmt: skip
    assert status["progress"]["designsCompleted"] == 1987  # the designs merged, not the designs asked for
    progress = status["progress"]
    assert (progress["designsRequested"], progress["designsProduced"], progress["designsSelected"]) == (2000, 1987, 50)
    assert "designsDroppedAsDuplicates" not in progress  # the summary did not say (a worker before issue 15)
    assert (
        status["message"]
        == "50 designs selected from 1987 (shards merged: 20/20); 1987 designs produced of 2000 requested"
    )
    complete = condition(status, "Complete")
    assert (complete["status"], complete["reason"]) == ("True", "Succeeded")
    assert kube.created == [] and outcome.phase.value == "Succeeded"


def test_a_succeeded_filter_without_a_summary_still_succeeds():
    kube = FakeKube(worker=None)
    run(
        campaign_body(status=filtering_status(), budget=None),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19"),
        filter_job(COMPLETE, succeeded=1),
        kube=kube,
        now=LATER,
    )
    status = kube.status_patches[-1]
    assert status["phase"] == "Succeeded" and "summary was not found" in status["message"]
    assert status["completionTime"] == "2026-11-23T13:00:00Z"  # no completionTime on the Job: now
    assert status["results"]["finalDesignsUri"].endswith("/final_30_designs")  # boltzgen's default budget


def test_a_failed_filter_fails_the_campaign_with_the_workers_words():
    summary = RunSummary(
        ok=False,
        error_class=ErrorClass.INVALID_INPUT,
        message="only 3 of 20 design shards are complete; at least 18 needed",
    )
    kube = FakeKube(worker=TerminatedWorker(exit_code=10, summary=summary, raw_message="", reason="Error"))
    _, outcome = run(
        campaign_body(status=filtering_status()),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19"),
        filter_job(failed("PodFailurePolicy")),
        kube=kube,
    )
    status = kube.status_patches[-1]
    assert status["phase"] == "Failed" and condition(status, "Failed")["reason"] == "InvalidInput"
    assert status["message"] == "filter Job failed: only 3 of 20 design shards are complete; at least 18 needed"
    assert outcome.events[-1][:2] == ("Warning", "InvalidInput")


# ---------------------------------------------------------------------------------------------- terminal, idempotent


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_campaign_is_left_alone_even_when_its_jobs_are_gone(phase):
    done = {
        "phase": phase,
        "observedGeneration": 1,
        "conditions": [],
        "jobNames": ["pdl1-design", "pdl1-filter"],
        "message": "done",
        "results": {"uri": BASE, "topDesigns": []},
    }
    kube, outcome = run(campaign_body(status=done, generation=2), cache_body())
    assert kube.created == []
    assert kube.status_patches == [{**done, "observedGeneration": 2}]
    kube, _ = run(
        campaign_body(status={**done, "observedGeneration": 2}, generation=2),
        cache_body(),
        design_job(COMPLETE),
        filter_job(failed("DeadlineExceeded")),
    )
    assert kube.created == [] and kube.status_patches == []


@pytest.mark.parametrize(
    "observe",
    [
        lambda: (None, None, None),
        lambda: (cache_body("Populating"), None, None),
        lambda: (cache_body(), design_job(active=3, ready=3, completedIndexes="0-4"), None),
        lambda: (cache_body(), design_job(COMPLETE, completedIndexes="0-19"), filter_job(active=1)),
        lambda: (cache_body(), design_job(failed("MaxFailedIndexesExceeded"), failedIndexes="0-2"), None),
        lambda: (cache_body(), design_job(COMPLETE, completedIndexes="0-19"), filter_job(failed("DeadlineExceeded"))),
    ],
    ids=["no-cache", "cache-populating", "designing", "filtering", "too-many-failed", "filter-timeout"],
)
def test_a_second_pass_with_the_same_observations_writes_nothing(observe):
    cache, design, filter_ = observe()
    status = designing_status() if design is not None else {}
    first, _ = run(campaign_body(status=status), cache, design, filter_, in_flight=frozenset({"filter"}))
    written = first.status_patches[-1] if first.status_patches else status
    again, outcome = run(
        campaign_body(status=written), cache, design, filter_, now=LATER, in_flight=frozenset({"filter"})
    )
    assert again.status_patches == [] and again.created == [] and not outcome.created_job


# ---------------------------------------------------------------------------------------------- issue 15


def test_a_filter_that_dropped_repeated_sequences_says_how_many_and_why():
    summary = RunSummary(
        ok=True,
        results_uri=f"{BASE}/final",
        designs_completed=3980,
        designs_selected=40,
        designs_duplicates_dropped=3950,
        shards_merged=list(range(20)),
        top_designs=[top(1, 0.9)],
    )
    kube = FakeKube(worker=TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    body = campaign_body(status=filtering_status(), stepOptions={"inverseFoldNumSequences": 2})
    run(
        body,
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19"),
        filter_job(COMPLETE, succeeded=1),
        kube=kube,
        now=LATER,
    )
    status = kube.status_patches[-1]
    progress = status["progress"]
    assert (progress["designsRequested"], progress["designsProduced"]) == (4000, 3980)  # 2 sequences per backbone
    assert (progress["designsDroppedAsDuplicates"], progress["designsSelected"]) == (3950, 40)
    assert status["message"] == (
        "40 designs selected from 3980 (shards merged: 20/20); 3980 designs produced of 4000 requested; 3950 dropped "
        "as repeated sequences (BoltzGen's filter keeps the first design of each sequence); fewer than the budget "
        "of 50"
    )


def test_a_failed_filter_of_class_filter_failed_fails_the_campaign_saying_why():
    summary = RunSummary(
        ok=False,
        error_class=ErrorClass.FILTER_FAILED,
        message=(
            "boltzgen merge failed on the stored shard outputs (a retry would read the same files): FileNotFoundError: "
            "Required file missing during merge: /work/shards/shard-00000/intermediate_designs/x_0.cif"
        ),
    )
    kube = FakeKube(worker=TerminatedWorker(exit_code=16, summary=summary, raw_message="", reason="Error"))
    failed = filter_job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}], failed=1)
    _, outcome = run(
        campaign_body(status=filtering_status()),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19"),
        failed,
        kube=kube,
        now=LATER,
    )
    status = kube.status_patches[-1]
    assert status["phase"] == "Failed" and condition(status, "Failed")["reason"] == "FilterFailed"
    assert "Required file missing during merge" in status["message"]


@pytest.mark.parametrize(
    ("resources", "short"),
    [
        ({}, False),  # the defaults: 8 CPUs, 64Gi
        ({"cpu": "32", "memory": "64Gi"}, False),  # 41.6 GB needed
        ({"cpu": "32", "memory": "32Gi"}, True),
        ({"cpu": "7500m", "memory": "10G"}, True),  # 8 processes (the limit rounded up): 10.4 GB
        ({"cpu": "64"}, True),  # 83.2 GB against the default 64Gi
    ],
)
def test_memory_below_the_analysis_pool_is_a_warning_condition(resources, short):
    kube, outcome = run(campaign_body(resources=resources), cache_body())
    status = kube.status_patches[-1]
    memory = next((c for c in status["conditions"] if c["type"] == "AnalysisMemory"), None)
    if not short:
        assert memory is None and "AnalysisMemoryShort" not in [e[1] for e in outcome.events]
        return
    assert (memory["status"], memory["reason"]) == ("False", "AnalysisMemoryShort")
    assert "resources.memory" in memory["message"] and "1.3 GB" in memory["message"]
    assert "analysis processes instead of" in memory["message"] or "not even one fits" in memory["message"]
    assert ("Warning", "AnalysisMemoryShort", memory["message"]) in outcome.events
    assert kube.created, "a warning, not a refusal: the campaign still starts"


def test_the_analysis_memory_condition_turns_true_once_memory_is_raised():
    kube, _ = run(campaign_body(resources={"cpu": "32", "memory": "16Gi"}), cache_body())
    short = kube.status_patches[-1]
    message = condition(short, "AnalysisMemory")["message"]
    assert "32 x about 1.3 GB = 41.6 GB (39Gi)" in message
    assert "the shards run 13 analysis processes instead of 32" in message  # 16Gi / 1.3 GB, as the worker caps
    again, outcome = run(
        campaign_body(status=short, resources={"cpu": "32", "memory": "48Gi"}),
        cache_body(),
        design_job(COMPLETE, completedIndexes="0-19", succeeded=20),
    )
    memory = condition(again.status_patches[-1], "AnalysisMemory")
    assert (memory["status"], memory["reason"]) == ("True", "Sufficient")
    assert "AnalysisMemoryShort" not in [e[1] for e in outcome.events]

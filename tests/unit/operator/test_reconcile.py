"""The reconcilers' decisions, with the API layer replaced by a recorder (the cluster tests cover the real one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from boltz_contract import ErrorClass, FileSummary, RunSummary
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import TerminatedWorker
from boltz_operator.reconcile.jobs import JobState, describe_failure, job_facts
from boltz_operator.reconcile.modelcache import reconcile_model_cache
from boltz_operator.reconcile.prediction import reconcile_prediction
from support.fake_kube import FakeKube
from support.objects import JobBody, Resource

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONFIG = OperatorConfig(worker_image="worker:1")


def prediction_body(status: dict | None = None, generation: int = 1, **spec_changes) -> dict:
    return Resource.prediction("egfr").spec(**spec_changes).generation(generation).status(status).obj()


def cache_body(phase: str | None, message: str | None = None) -> dict:
    return Resource.model_cache("default").phase(phase, message).obj()


def job(conditions: list[dict] | None = None, suspend: bool = False, **status) -> dict:
    return JobBody("egfr-predict").conditions(conditions).suspended(suspend).status(**status).obj()


def test_without_a_ready_cache_the_prediction_waits_and_creates_nothing():
    for cache, reason in (
        (None, "ModelCacheNotFound"),
        (cache_body("Populating"), "ModelCacheNotReady"),
        (cache_body("Failed", "sha256 mismatch"), "ModelCacheFailed"),
    ):
        kube = FakeKube()
        outcome = reconcile_prediction(prediction_body(), cache, None, kube, CONFIG, NOW)
        assert kube.created == []
        [status] = kube.status_patches
        assert status["phase"] == "WaitingForModelCache"
        assert status["conditions"][0]["reason"] == reason
        assert outcome.events and outcome.events[0][1] == reason


def test_with_a_ready_cache_it_creates_the_prepare_configmap_then_the_prepare_job_and_is_preparing():
    kube = FakeKube()
    outcome = reconcile_prediction(prediction_body(), cache_body("Ready"), None, kube, CONFIG, NOW)
    assert [o.metadata.name for o in kube.created] == ["egfr-predict-run", "egfr-prepare"]
    assert outcome.created_job and outcome.created_step == "prepare"
    assert kube.status_patches[-1]["phase"] == "Preparing"
    assert "jobName" not in kube.status_patches[-1]


def test_a_pass_that_changes_nothing_writes_nothing():
    kube = FakeKube()
    reconcile_prediction(prediction_body(), None, None, kube, CONFIG, NOW)
    written = kube.status_patches[-1]
    again = FakeKube()
    reconcile_prediction(prediction_body(status=written), None, None, again, CONFIG, NOW)
    assert again.status_patches == [] and again.created == []


def test_invalid_input_fails_without_creating_anything():
    kube = FakeKube()
    body = prediction_body(
        sequences=[{"protein": {"ids": ["A"], "sequence": "MKT"}}, {"ligand": {"ids": ["B"], "smiles": "C" * 140}}]
    )
    reconcile_prediction(body, cache_body("Ready"), None, kube, CONFIG, NOW)
    assert kube.created == []
    assert kube.status_patches[-1]["phase"] == "Failed"
    assert "140 heavy atoms" in kube.status_patches[-1]["message"]


def test_an_invalid_spec_is_written_once_not_on_every_pass():
    # Each status write is a watch event and so another pass: a failure whose completionTime followed the clock
    # would be rewritten forever.
    kube = FakeKube()
    reconcile_prediction(prediction_body(retries=-1), None, None, kube, CONFIG, NOW)
    [failed] = kube.status_patches
    assert failed["phase"] == "Failed" and "retries" in failed["message"]
    again = FakeKube()
    reconcile_prediction(
        prediction_body(status=failed, retries=-1), None, None, again, CONFIG, NOW + timedelta(minutes=5)
    )
    assert again.status_patches == [] and again.created == []


def test_a_finished_prediction_is_never_rerun_even_when_its_job_is_gone():
    done = {
        "phase": "Succeeded",
        "observedGeneration": 1,
        "conditions": [],
        "results": {"uri": "s3://x", "structures": []},
    }
    kube = FakeKube()
    reconcile_prediction(prediction_body(status=done, generation=2), cache_body("Ready"), None, kube, CONFIG, NOW)
    assert kube.created == []
    assert kube.status_patches == [{**done, "observedGeneration": 2}]


def test_a_succeeded_job_becomes_results_from_the_workers_summary():
    summary = RunSummary(
        ok=True,
        results_uri="s3://b/p",
        confidence_score=0.9,
        affinity_pred_value=-1.0,
        structures=["m0.cif"],
        report="report.html",
    )
    kube = FakeKube(TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    reconcile_prediction(
        prediction_body(status={"phase": "Running"}),
        cache_body("Ready"),
        job([{"type": "Complete", "status": "True"}], succeeded=1),
        kube,
        CONFIG,
        NOW,
    )
    status = kube.status_patches[-1]
    assert status["phase"] == "Succeeded"
    assert status["results"] == {
        "uri": "s3://b/p",
        "structures": ["s3://b/p/m0.cif"],
        "confidenceScore": 0.9,
        "affinityPredValue": -1.0,
        "report": "s3://b/p/report.html",
    }


def test_job_states_map_to_phases():
    assert job_facts(job(suspend=True)).state == JobState.QUEUED
    assert job_facts(job(active=1)).state == JobState.PENDING
    assert job_facts(job(active=1, ready=1)).state == JobState.RUNNING
    assert job_facts(job([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}])).state == JobState.FAILED


def test_failure_messages_say_what_happened():
    deadline = job_facts(job([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]))
    assert describe_failure(deadline, None, None, 600) == (
        "Timeout",
        "timed out after 600s (spec.timeoutSeconds); the run was stopped",
    )
    backoff = job_facts(job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=3))
    summary = RunSummary(ok=False, error_class=ErrorClass.RESULTS_STORE_ERROR, message="S3 PutObject denied")
    assert describe_failure(backoff, 13, summary, 600) == (
        "ResultsStoreError",
        "failed after 3 attempts; last error: S3 PutObject denied",
    )
    crash = job_facts(job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}], failed=1))
    assert describe_failure(crash, 11, None, 600)[0] == "ModelCacheUnusable"


def test_a_populated_cache_is_ready_with_its_files_and_a_ready_one_is_left_alone():
    summary = RunSummary(
        ok=True,
        files=[FileSummary(path="boltz2/boltz2_conf.ckpt", bytes=10, sha256="a" * 64)],
        total_bytes=10,
        duration_seconds=1.5,
    )
    kube = FakeKube(TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    body = cache_body("Populating")
    reconcile_model_cache(
        body,
        job([{"type": "Complete", "status": "True"}]) | {"metadata": {"name": "default-populate-1"}},
        kube,
        CONFIG,
        NOW,
    )
    ready = kube.status_patches[-1]
    assert ready["phase"] == "Ready" and ready["totalBytes"] == 10 and ready["observedGeneration"] == 1
    again = FakeKube()
    reconcile_model_cache({**body, "status": ready}, None, again, CONFIG, NOW)
    assert again.created == [] and again.status_patches == []


def test_a_cache_with_both_bundles_passes_them_to_populate_and_lists_every_file_when_ready():
    from kubernetes.client import V1ConfigMap

    from boltz_contract import RUN_FILE, PopulateRun
    from boltz_operator.api.modelcache import BoltzModelCacheStatus
    from boltz_worker.model_cache.model_catalog import BOLTZ2, BOLTZGEN

    body = cache_body(None)
    body["spec"]["bundles"] = ["boltz2", "boltzgen"]
    kube = FakeKube()
    reconcile_model_cache(body, None, kube, CONFIG, NOW)
    configmap = next(o for o in kube.created if isinstance(o, V1ConfigMap))
    assert PopulateRun.model_validate_json(configmap.data[RUN_FILE]).bundles == ["boltz2", "boltzgen"]

    paths = [*(BOLTZ2.file_path(f) for f in BOLTZ2.files), BOLTZ2.dir_path("mols"),
             *(BOLTZGEN.file_path(f) for f in BOLTZGEN.files)]  # fmt: skip
    summary = RunSummary(ok=True, files=[FileSummary(path=p, bytes=1) for p in paths], total_bytes=len(paths))
    done = FakeKube(TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    reconcile_model_cache({**body, "status": kube.status_patches[-1]},
                          job([{"type": "Complete", "status": "True"}]) | {"metadata": {"name": "default-populate-1"}},
                          done, CONFIG, NOW)  # fmt: skip
    ready = BoltzModelCacheStatus.model_validate(done.status_patches[-1])
    assert ready.phase.value == "Ready"
    assert [f.path for f in ready.files] == paths and "boltzgen/mols.zip" in paths


def test_a_job_this_process_just_created_is_not_created_again_before_the_watch_shows_it():
    kube = FakeKube()
    pending = {"phase": "Pending", "jobName": "egfr-predict", "conditions": []}
    reconcile_prediction(
        prediction_body(status=pending), cache_body("Ready"), None, kube, CONFIG, NOW, in_flight=frozenset({"predict"})
    )
    assert kube.created == [] and kube.status_patches == []

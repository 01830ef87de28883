"""What the kopf indices keep (reconcile/indices.py, the index functions in handlers.py): only what a pass reads."""

from __future__ import annotations

import copy

import pytest

from boltz_operator import handlers
from boltz_operator.api import PredictionPhase
from boltz_operator.api.prediction import BoltzPredictionStatus
from boltz_operator.reconcile.bookkeeping import Bookkeeping
from boltz_operator.reconcile.indices import finished, job_entry
from boltz_operator.reconcile.jobs import count_indexes, job_facts
from boltz_operator.reconcile.status import Outcome

T0, T1 = "2026-11-30T00:00:00Z", "2026-11-30T00:05:00Z"


def full_job(status: dict | None = None, suspend: bool = False) -> dict:
    """A Job as the watch delivers it: the pod template and managedFields are most of it."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "p-predict",
            "namespace": "ns",
            "uid": "job-uid",
            "resourceVersion": "123",
            "generation": 1,
            "labels": {
                "app.kubernetes.io/managed-by": "boltz-operator",
                "boltz-operator.io/owner-kind": "BoltzPrediction",
                "boltz-operator.io/owner-name": "p",
            },
            "ownerReferences": [
                {
                    "apiVersion": "boltz-operator.io/v1alpha1",
                    "kind": "BoltzPrediction",
                    "name": "p",
                    "uid": "p-uid",
                    "controller": True,
                }
            ],
            "managedFields": [{"manager": "boltz-operator", "operation": "Update", "fieldsV1": {"f:spec": {}}}] * 3,
        },
        "spec": {
            "suspend": suspend,
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "completionMode": "Indexed",
            "podFailurePolicy": {
                "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [10, 11]}}]
            },
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "worker",
                            "image": "worker:1",
                            "args": ["predict", "--run", "/run/run.json"],
                            "env": [{"name": f"E{i}", "value": "x" * 40} for i in range(20)],
                            "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}}],
                },
            },
        },
        "status": status or {},
    }


def cond(type_: str, reason: str | None = None, message: str | None = None) -> dict:
    c = {"type": type_, "status": "True", "lastProbeTime": T1, "lastTransitionTime": T1}
    return {**c, **({"reason": reason} if reason else {}), **({"message": message} if message else {})}


JOB_STATUSES = {
    "created": ({}, False),
    "suspended": ({}, True),
    "pending": ({"active": 1, "ready": 0, "startTime": T0, "terminating": 0}, False),
    "running": ({"active": 1, "ready": 1, "startTime": T0}, False),
    "pod finishing": (
        {"active": 0, "ready": 0, "startTime": T0, "uncountedTerminatedPods": {"succeeded": ["pod-uid"]}},
        False,
    ),
    "success criteria met": (
        {"startTime": T0, "succeeded": 1, "conditions": [cond("SuccessCriteriaMet", "CompletionsReached")]},
        False,
    ),
    "complete": (
        {
            "startTime": T0,
            "completionTime": T1,
            "succeeded": 1,
            "conditions": [cond("SuccessCriteriaMet"), cond("Complete")],
        },
        False,
    ),
    "retried then failed": (
        {
            "startTime": T0,
            "failed": 3,
            "conditions": [
                cond("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            ],
        },
        False,
    ),
    "deadline": ({"startTime": T0, "failed": 1, "conditions": [cond("Failed", "DeadlineExceeded", "too long")]}, False),
    "indexed, some shards failed": (
        {"startTime": T0, "active": 2, "completedIndexes": "0-3,7", "failedIndexes": "5", "failed": 1, "succeeded": 5},
        False,
    ),
}


@pytest.mark.parametrize("case", list(JOB_STATUSES))
def test_a_projected_job_gives_the_same_facts_as_the_whole_body(case):
    status, suspend = JOB_STATUSES[case]
    job = full_job(copy.deepcopy(status), suspend=suspend)
    entry = job_entry(job)
    assert job_facts(entry) == job_facts(job)
    for key in ("completedIndexes", "failedIndexes", "active", "failed"):  # what the campaign reads of its design Job
        assert entry["status"].get(key) == job["status"].get(key)
    assert count_indexes(entry["status"].get("completedIndexes")) == count_indexes(
        job["status"].get("completedIndexes")
    )
    assert entry["metadata"] == {"name": "p-predict", "namespace": "ns", "uid": "job-uid"}
    assert "template" not in entry.get("spec", {}) and "managedFields" not in entry["metadata"]


def test_a_projected_job_holds_nothing_of_the_event_body():
    job = full_job(copy.deepcopy(JOB_STATUSES["retried then failed"][0]))
    entry = job_entry(job)
    job["status"]["conditions"][0]["reason"] = "changed"
    job["status"]["failed"] = 9
    assert entry["status"]["conditions"][0]["reason"] == "BackoffLimitExceeded" and entry["status"]["failed"] == 3


def run(phase: str | None, generation: int = 1, observed: int | None = 1, cache: str = "default") -> dict:
    status = {"phase": phase, "observedGeneration": observed} if phase else {}
    return {
        "metadata": {"namespace": "ns", "name": "p", "uid": "u", "generation": generation},
        "spec": {"modelCache": cache},
        "status": status,
    }


@pytest.mark.parametrize(
    "body, done",
    [
        (run("Succeeded"), True),
        (run("Failed"), True),
        (run("Succeeded", generation=2, observed=1), False),  # a new generation not yet recorded in status
        (run("Running"), False),
        (run("Pending"), False),
        (run(None), False),
        (run("WaitingForModelCache"), False),
    ],
)
def test_finished_runs_leave_the_parent_index(body, done):
    assert finished(body) is done
    assert handlers.predictions(namespace="ns", name="p", body=body) == ({} if done else {("ns", "p"): body})
    assert handlers.campaigns(namespace="ns", name="p", body=body) == ({} if done else {("ns", "p"): body})


@pytest.mark.parametrize(
    "phase, waits",
    [
        (None, True),
        ("WaitingForModelCache", True),
        ("Pending", False),
        ("Running", False),
        ("Succeeded", False),
        ("Failed", False),
    ],
)
def test_only_runs_a_cache_change_may_start_are_in_the_by_cache_index(phase, waits):
    body = run(phase, cache="c1")
    assert handlers.predictions_by_cache(namespace="ns", spec=body["spec"], body=body) == (
        {("ns", "c1"): body} if waits else {}
    )


def test_the_job_index_keeps_the_projection():
    job = full_job(copy.deepcopy(JOB_STATUSES["complete"][0]))
    labels = job["metadata"]["labels"]
    assert handlers.jobs_by_owner(namespace="ns", labels=labels, body=job) == {
        ("ns", "BoltzPrediction", "p"): job_entry(job)
    }


# ---------------------------------------------------------------------------------------------- own writes

KIND = "BoltzPrediction"


def status_body(status: dict) -> dict:
    return {"metadata": {"namespace": "ns", "name": "p", "uid": "u", "generation": 1}, "spec": {}, "status": status}


def test_a_finished_status_is_not_kept_once_a_body_shows_it_and_older_bodies_are_skipped():
    book = Bookkeeping()
    done = BoltzPredictionStatus(phase=PredictionPhase.SUCCEEDED, observed_generation=1, message="done")
    book.remember_write(KIND, status_body({}), Outcome(phase=done.phase, status=done, status_written=True))
    running = status_body({"phase": "Running", "observedGeneration": 1})
    assert book.with_own_writes(KIND, running)["status"] == done.to_body()  # the index lags: the overlay
    shown = status_body(done.to_body())
    assert book.with_own_writes(KIND, shown) is shown
    assert book.with_own_writes(KIND, running) is None  # older than what the API holds: nothing to do
    assert book.with_own_writes(KIND, shown) is shown
    book.forget(KIND, shown["metadata"])
    assert book.sizes()["written"] == 0


def test_a_status_in_progress_stays_overlaid_and_a_model_cache_failure_is_not_final():
    book = Bookkeeping()
    running = BoltzPredictionStatus(phase=PredictionPhase.RUNNING, observed_generation=1)
    book.remember_write(KIND, status_body({}), Outcome(phase=running.phase, status=running, status_written=True))
    shown = status_body(running.to_body())
    assert book.with_own_writes(KIND, shown)["status"] == running.to_body()
    assert book.with_own_writes(KIND, status_body({"phase": "Pending"}))["status"] == running.to_body()
    cache_failed = {"phase": "Failed", "observedGeneration": 1}
    book._written[("BoltzModelCache", "ns", "p", "u")] = cache_failed
    assert book.with_own_writes("BoltzModelCache", status_body({"phase": "Populating"}))["status"] == cache_failed


def test_jobs_without_failed_pods_take_no_entry():
    book = Bookkeeping()
    assert book.new_failed_pods("ns", "p-predict", 0) == 0
    assert book.sizes()["failed_pods_seen"] == 0
    assert book.new_failed_pods("ns", "p-predict", 1) == 1
    assert book.sizes()["failed_pods_seen"] == 1

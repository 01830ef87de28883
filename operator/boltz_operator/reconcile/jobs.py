"""Reading a Job (as the watch delivers it, a camelCase dict) into the few facts the reconcilers use."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import boltz_contract as contract
from boltz_operator.builders.common import WORKER_CONTAINER
from boltz_operator.kube import KubeApi


class JobState(str, Enum):
    QUEUED = "Queued"  # suspended (Kueue holds it until admitted)
    PENDING = "Pending"  # created, no pod ready yet
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class JobFacts:
    name: str
    state: JobState
    attempts: int
    start_time: str | None
    completion_time: str | None
    failure_reason: (
        str | None
    )  # the Failed condition's reason: PodFailurePolicy, BackoffLimitExceeded, DeadlineExceeded
    failure_message: str | None


def job_facts(job: dict) -> JobFacts:
    status = job.get("status") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    # SuccessCriteriaMet / FailureTarget come first: the outcome is settled and the pod has finished, while the Job
    # controller still accounts for it before it adds Complete / Failed.
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    uncounted = status.get("uncountedTerminatedPods") or {}
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        state = JobState.SUCCEEDED
    elif failed:
        state = JobState.FAILED
    elif (job.get("spec") or {}).get("suspend"):
        state = JobState.QUEUED
    elif status.get("ready", 0) > 0 or uncounted.get("succeeded") or uncounted.get("failed"):
        state = JobState.RUNNING  # a pod that just finished is still the run in progress, not a new wait
    else:
        state = JobState.PENDING
    return JobFacts(
        name=job["metadata"]["name"],
        state=state,
        attempts=_pods_started(status),
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime") or (failed or {}).get("lastTransitionTime"),
        failure_reason=(failed or {}).get("reason"),
        failure_message=(failed or {}).get("message"),
    )


def worker_error_class(exit_code: int | None, summary: contract.RunSummary | None) -> str:
    """The worker's error class: the one its termination message names, else the one its exit code carries, else
    Internal (an exit code of no class: a crash, a signal)."""
    if summary is not None and summary.error_class is not None:
        return summary.error_class.value
    if exit_code is None:
        return contract.ErrorClass.INTERNAL.value
    return contract.ERROR_CLASS_OF_EXIT_CODE.get(exit_code, contract.ErrorClass.INTERNAL).value


OOM_KILLED = "OOMKilled"  # the kubelet's reason for a container its memory limit killed


def describe_failure(
    facts: JobFacts,
    exit_code: int | None,
    summary: contract.RunSummary | None,
    timeout_seconds: int | None,
    container_reason: str | None = None,
    memory_limit: str | None = None,
    memory_setting: str = "spec.resources.memory",
    timeout_setting: str = "spec.timeoutSeconds",
) -> tuple[str, str]:
    """(reason, message) for a failed Job: the worker's own words first, then what the kubelet says (a container
    its memory limit killed: `container_reason` OOMKilled, `memory_limit` its limit), then the Job controller.
    `memory_setting`, `timeout_setting`: where the user raises the limit that was hit."""
    if facts.failure_reason == "DeadlineExceeded":
        return "Timeout", f"timed out after {timeout_seconds}s ({timeout_setting}); the run was stopped"
    if container_reason == OOM_KILLED and (summary is None or summary.error_class is None):
        limit = f" of {memory_limit}" if memory_limit else ""
        return contract.ErrorClass.MEMORY_LIMIT_EXCEEDED.value, (
            f"the worker was killed by its memory limit{limit} (OOMKilled, exit code {exit_code}); the same input "
            f"needs the same memory again, so it was not retried: raise {memory_setting}"
        )
    if summary is not None and summary.error_class is not None:
        reason = worker_error_class(exit_code, summary)
        message = summary.message or reason
    elif exit_code is not None and exit_code in contract.ERROR_CLASS_OF_EXIT_CODE:
        reason = worker_error_class(exit_code, None)
        message = f"worker exited with code {exit_code} ({reason}) without a summary"
    else:
        reason = facts.failure_reason or "JobFailed"
        message = (
            f"worker exited with code {exit_code}"
            if exit_code is not None
            else (facts.failure_message or "the Job failed")
        )
    if facts.failure_reason == "BackoffLimitExceeded":
        message = f"failed after {facts.attempts} attempts; last error: {message}"
    return reason, message


def _pods_started(status: dict) -> int:
    # A finished pod sits in uncountedTerminatedPods until the Job controller moves it to succeeded/failed: counting
    # only those two would make the number dip while a pod finishes.
    uncounted = status.get("uncountedTerminatedPods") or {}
    return (
        status.get("failed", 0)
        + status.get("succeeded", 0)
        + status.get("active", 0)
        + len(uncounted.get("failed") or [])
        + len(uncounted.get("succeeded") or [])
    )


def count_indexes(indexes: str | None) -> int:
    """How many indexes an Indexed Job's completedIndexes/failedIndexes names ("1,3-5,7" -> 5)."""
    total = 0
    for part in (indexes or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        total += int(high) - int(low) + 1 if high else 1
    return total


def index_set(indexes: str | None) -> set[int]:
    """The indexes an Indexed Job's completedIndexes/failedIndexes names ("1,3-5" -> {1, 3, 4, 5})."""
    found: set[int] = set()
    for part in (indexes or "").split(","):
        if part:
            low, _, high = part.partition("-")
            found.update(range(int(low), int(high or low) + 1))
    return found


def shard_errors(kube: KubeApi, namespace: str, job_name: str, limit: int = 5) -> str:
    """The failed shards' own words (an Indexed Job's failed pods), one per distinct error, at most `limit`:
    'shard 3: GPUOutOfMemory: ...; shard 7: ...'; "" when no failed pod is left."""
    seen, parts = set(), []
    for index, worker in kube.failed_workers(namespace, job_name, WORKER_CONTAINER):
        summary = worker.summary
        text = (
            f"{summary.error_class.value}: {summary.message}"
            if summary and summary.error_class
            else f"exit code {worker.exit_code}: {worker.raw_message[-200:]}"
        )
        if text in seen:
            continue
        seen.add(text)
        parts.append(f"shard {index}: {text}")
        if len(parts) == limit:
            break
    return "; ".join(parts)

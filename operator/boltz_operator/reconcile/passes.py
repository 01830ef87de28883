"""The reconcile pass, the same for every kind (the kind's specifics are its Registration), and what surrounds it:
Events and metrics after the pass, retries counted from Job events, forgetting deleted objects."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

from boltz_operator.builders.common import WORKER_CONTAINER
from boltz_operator.metrics import Metrics
from boltz_operator.reconcile.jobs import JobState, job_facts, worker_error_class
from boltz_operator.reconcile.msa_gate import MsaGateView
from boltz_operator.reconcile.registry import BY_KIND, PassInput, Registration
from boltz_operator.reconcile.status import Outcome

log = logging.getLogger(__name__)
TERMINAL_PHASES = ("Succeeded", "Failed", "Ready")


def _one(index: Mapping, key) -> dict | None:
    store = index.get(key)
    return next(iter(store), None) if store else None


def _job_named(jobs: Iterable[dict], name: str) -> dict | None:
    return next((job for job in jobs if job["metadata"]["name"] == name), None)


def run_pass(
    registration: Registration,
    body: dict,
    model_caches: Mapping,
    jobs_by_owner: Mapping,
    memo,
    msa_fetches: Mapping | None = None,
) -> Outcome:
    """One pass over one object: observe (cache, Jobs, own writes), reconcile, report, remember.

    model_caches: the index (namespace, name) -> cache bodies; jobs_by_owner: (namespace, kind, owner name) -> Jobs;
    msa_fetches: the index of prepare Jobs that may call the MSA server (key -> owners; msa_gate.ALL -> all).
    Raises whatever the reconciler raises (kopf logs it and retries the event; counted in reconcile_errors).
    """
    kind, meta = registration.kind.kind, body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    book = memo.book
    with book.lock(kind, namespace, name), _counting_errors(kind, namespace, memo.metrics):
        body = book.with_own_writes(kind, body)
        if body is None:  # older than the finished status this process has seen: the pass would change nothing
            return Outcome()
        cache = None
        if registration.uses_cache:
            cache = _one(model_caches, (namespace, (body.get("spec") or {}).get("modelCache", "default")))
        owned = jobs_by_owner.get((namespace, kind, name), [])
        jobs = {step: _job_named(owned, registration.job_name(meta, step)) for step in registration.steps}
        in_flight = book.steps_in_flight(kind, meta, jobs)
        msa = MsaGateView(memo.msa_gate, msa_fetches) if msa_fetches is not None else None
        outcome = registration.reconcile(PassInput(body, cache, jobs, in_flight, memo.kube, memo.config, msa))
        book.remember_created(kind, meta, outcome)
        _report(kind, body, outcome, memo)
        book.remember_write(kind, body, outcome)
    notifier = getattr(memo, "notifier", None)
    if notifier is not None:  # queues deliveries (status.notifications) on its own thread; never waits on them
        notifier.offer(kind, body, outcome.status.to_body() if outcome.status is not None else None)
    return outcome


def wake_msa_waiters(
    runs: Mapping[str, Mapping], model_caches: Mapping, jobs_by_owner: Mapping, msa_fetches: Mapping, memo
) -> None:
    """Run a pass for each run (prediction, screen) the MSA gate told to wait, now that a prepare it may have waited
    on finished (or its holder was deleted). runs: kind -> its index of unfinished runs; a run gone from it
    (finished, deleted) has nothing to do."""
    for kind, namespace, name in memo.msa_gate.take_wakeups():
        store = runs.get(kind, {}).get((namespace, name))
        if store:
            run_pass(BY_KIND[kind], next(iter(store)), model_caches, jobs_by_owner, memo, msa_fetches)


def waits_on_cache(registration: Registration, body: Mapping) -> bool:
    """The run (on a model cache) is in a phase where a change of the cache may start it."""
    return (body.get("status") or {}).get("phase") in registration.waits_on_cache_in


def waiting_on_cache(registration: Registration, bodies: Iterable[dict]) -> list[dict]:
    """Those of `bodies` (runs on one model cache) in a phase where a change of the cache may start them."""
    return [b for b in list(bodies) if waits_on_cache(registration, b)]


def forget(registration: Registration, body: dict, memo) -> None:
    """The object was deleted: drop its metrics series, bookkeeping and MSA reservations."""
    meta = body["metadata"]
    memo.msa_gate.forget((registration.kind.kind, meta["namespace"], meta["name"]))
    memo.metrics.phases.forget(registration.kind.kind, meta["namespace"], meta["name"])
    memo.book.forget(registration.kind.kind, meta)


def _report(kind: str, body: dict, outcome: Outcome, memo) -> None:
    """Events and metrics of a pass."""
    meta = body["metadata"]
    namespace = meta["namespace"]
    for type_, reason, message in outcome.events:
        memo.kube.post_event(body, type_, reason, message)
    metrics: Metrics = memo.metrics
    phase = outcome.phase.value if outcome.phase else None
    metrics.phases.set(kind, namespace, meta["name"], phase)
    if outcome.created_job:
        metrics.jobs_created.labels(kind, namespace).inc()
    previous = (body.get("status") or {}).get("phase")
    if outcome.status_written and phase in TERMINAL_PHASES and previous not in TERMINAL_PHASES:
        status = outcome.status
        metrics.finished(
            kind,
            namespace,
            phase,
            meta.get("creationTimestamp"),
            getattr(status, "start_time", None),
            getattr(status, "completion_time", None),
        )


@contextmanager
def _counting_errors(kind: str, namespace: str, metrics: Metrics):
    """Count a pass that raised (kopf logs it and retries the event)."""
    try:
        yield
    except Exception:
        metrics.reconcile_errors.labels(kind, namespace).inc()
        raise


def count_retries(registration: Registration, namespace: str, job_name: str, job: dict, memo) -> None:
    """A Job whose failed count grew while it still runs has retried a worker: count it by the worker's error class
    (the class its termination message names, else the one its exit code carries; "Unknown" without a pod)."""
    new = memo.book.new_failed_pods(namespace, job_name, (job.get("status") or {}).get("failed", 0))
    if not new or job_facts(job).state in (JobState.SUCCEEDED, JobState.FAILED):
        return
    worker = memo.kube.last_terminated_worker(namespace, job_name, WORKER_CONTAINER)
    reason = worker_error_class(worker.exit_code, worker.summary) if worker else "Unknown"
    memo.metrics.retries.labels(registration.kind.kind, namespace, reason).inc(new)

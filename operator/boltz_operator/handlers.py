"""kopf wiring: thin handlers that hand observations to the reconcilers.

Only `on.event` and `index` handlers: they write nothing of kopf's own onto the objects (no annotations, no
finalizers). Children reach their parent through label-selected indices, never through handlers on the
children themselves. kopf fills every index before the first handler runs, so a restarted operator sees
the Jobs it created before it decides anything.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from contextlib import contextmanager

import kopf
from kubernetes import client, config as kube_config

from boltz_operator.api import GROUP, VERSION, CampaignPhase, PredictionPhase
from boltz_operator.builders import campaign as campaign_builders
from boltz_operator.builders import modelcache as cache_builders
from boltz_operator.builders import prediction as prediction_builders
from boltz_operator.builders.common import LABEL_MANAGED_BY, LABEL_OWNER_KIND, LABEL_OWNER_NAME, MANAGED_BY, WORKER_CONTAINER
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import Kube
from boltz_operator.metrics import Metrics
from boltz_operator.reconcile.jobs import JobState, job_facts
from boltz_operator.reconcile.campaign import reconcile_campaign
from boltz_operator.reconcile.modelcache import reconcile_model_cache
from boltz_operator.reconcile.prediction import reconcile_prediction
from boltz_operator.reconcile.status import Outcome
from boltz_contract import ERROR_CLASS_OF_EXIT_CODE, ErrorClass

log = logging.getLogger(__name__)
CHILD_LABELS = {LABEL_MANAGED_BY: MANAGED_BY}
PREDICTION = "BoltzPrediction"
MODEL_CACHE = "BoltzModelCache"
CAMPAIGN = "BoltzGenCampaign"
TERMINAL_PHASES = ("Succeeded", "Failed", "Ready")

# A Job event and its parent's own event can arrive at once (handlers run in a thread pool): one pass per object at a time.
_locks: defaultdict[tuple, threading.Lock] = defaultdict(threading.Lock)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    settings.posting.enabled = False  # our Events are few and deliberate (Kube.post_event)
    settings.watching.server_timeout = 300
    settings.persistence.finalizer = None
    # No cluster-wide discovery: kopf would list/watch CRDs and namespaces, which the chart's role does not grant.
    settings.scanning.disabled = True
    memo.config = OperatorConfig.from_env()
    settings.execution.max_workers = memo.config.worker_threads
    memo.kube = Kube(_api_client(memo.config.worker_threads))
    memo.metrics = Metrics()
    memo.failed_pods_seen = {}
    memo.written = {}
    # Jobs this process created that the watch has not delivered yet (indices lag behind our own writes):
    # (namespace, name, uid) -> the steps ("predict", "design", "filter") whose Job is in flight.
    memo.jobs_in_flight = {}
    if memo.config.metrics_port:
        memo.metrics.serve(memo.config.metrics_port)


def _api_client(connections: int) -> client.ApiClient:
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    api_config = client.Configuration.get_default_copy()
    api_config.connection_pool_maxsize = connections
    return client.ApiClient(api_config)


# ---------------------------------------------------------------------------------------------- indices


@kopf.index(GROUP, VERSION, "boltzpredictions")
def predictions(namespace, name, body, **_):
    return {(namespace, name): body}


@kopf.index(GROUP, VERSION, "boltzpredictions")
def predictions_by_cache(namespace, spec, body, **_):
    return {(namespace, spec.get("modelCache", "default")): body}


@kopf.index(GROUP, VERSION, "boltzgencampaigns")
def campaigns(namespace, name, body, **_):
    return {(namespace, name): body}


@kopf.index(GROUP, VERSION, "boltzgencampaigns")
def campaigns_by_cache(namespace, spec, body, **_):
    return {(namespace, spec.get("modelCache", "default")): body}


@kopf.index(GROUP, VERSION, "boltzmodelcaches")
def model_caches(namespace, name, body, **_):
    return {(namespace, name): body}


@kopf.index("batch", "v1", "jobs", labels=CHILD_LABELS)
def jobs_by_owner(namespace, labels, body, **_):
    return {(namespace, labels.get(LABEL_OWNER_KIND), labels.get(LABEL_OWNER_NAME)): body}


def _one(index, key):
    store = index.get(key)
    return next(iter(store), None) if store else None


def _job_named(jobs_by_owner, key, job_name: str):
    return next((job for job in jobs_by_owner.get(key, []) if job["metadata"]["name"] == job_name), None)


# ---------------------------------------------------------------------------------------------- passes


def _with_own_writes(kind: str, body, memo):
    """The body with the status this operator last wrote. The operator is the only writer of status, so that is what
    the API holds, while indices (and so passes started by a child's event) can lag several writes behind: without
    this, a pass would recompute from an old status and write the same change again."""
    meta = body["metadata"]
    written = memo.written.get((kind, meta["namespace"], meta["name"], meta["uid"]))
    return body if written is None else {**body, "status": written}


def _remember_write(kind: str, body, outcome: Outcome, memo) -> None:
    if outcome.status_written:
        meta = body["metadata"]
        memo.written[(kind, meta["namespace"], meta["name"], meta["uid"])] = outcome.status.to_body()


def _forget(kind: str, body, memo) -> None:
    meta = body["metadata"]
    memo.metrics.phases.forget(kind, meta["namespace"], meta["name"])
    memo.written.pop((kind, meta["namespace"], meta["name"], meta["uid"]), None)
    _locks.pop((kind, meta["namespace"], meta["name"]), None)
    memo.jobs_in_flight.pop((meta["namespace"], meta["name"], meta["uid"]), None)


def _steps_in_flight(meta, jobs: dict[str, dict | None], memo) -> frozenset[str]:
    """The steps whose Job this process created and the index does not show yet; a delivered one is forgotten."""
    created = memo.jobs_in_flight.get((meta["namespace"], meta["name"], meta["uid"]), set())
    created -= {step for step, job in jobs.items() if job is not None}
    return frozenset(created)


def _remember_created(meta, outcome: Outcome, memo) -> None:
    if outcome.created_job:
        memo.jobs_in_flight.setdefault((meta["namespace"], meta["name"], meta["uid"]), set()).add(outcome.created_step)


def _prediction_pass(body, model_caches, jobs_by_owner, memo) -> Outcome:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    with _locks[(PREDICTION, namespace, name)], _counting_errors(PREDICTION, namespace, memo):
        body = _with_own_writes(PREDICTION, body, memo)
        cache = _one(model_caches, (namespace, (body.get("spec") or {}).get("modelCache", "default")))
        job = _job_named(jobs_by_owner, (namespace, PREDICTION, name), prediction_builders.job_name(name))
        in_flight = _steps_in_flight(meta, {prediction_builders.COMPONENT: job}, memo)
        outcome = reconcile_prediction(body, cache, job, memo.kube, memo.config,
                                       job_in_flight=prediction_builders.COMPONENT in in_flight)
        _remember_created(meta, outcome, memo)
        _report(PREDICTION, body, outcome, memo)
        _remember_write(PREDICTION, body, outcome, memo)
    return outcome


def _campaign_pass(body, model_caches, jobs_by_owner, memo) -> Outcome:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    with _locks[(CAMPAIGN, namespace, name)], _counting_errors(CAMPAIGN, namespace, memo):
        body = _with_own_writes(CAMPAIGN, body, memo)
        cache = _one(model_caches, (namespace, (body.get("spec") or {}).get("modelCache", "default")))
        jobs = {step: _job_named(jobs_by_owner, (namespace, CAMPAIGN, name), campaign_builders.job_name(name, step))
                for step in (campaign_builders.DESIGN, campaign_builders.FILTER)}
        outcome = reconcile_campaign(body, cache, jobs[campaign_builders.DESIGN], jobs[campaign_builders.FILTER],
                                     memo.kube, memo.config, in_flight=_steps_in_flight(meta, jobs, memo))
        _remember_created(meta, outcome, memo)
        _report(CAMPAIGN, body, outcome, memo)
        _remember_write(CAMPAIGN, body, outcome, memo)
    return outcome


def _model_cache_pass(body, jobs_by_owner, memo) -> Outcome:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    with _locks[(MODEL_CACHE, namespace, name)], _counting_errors(MODEL_CACHE, namespace, memo):
        body = _with_own_writes(MODEL_CACHE, body, memo)
        ref = cache_builders.ModelCacheRef(namespace, name, meta["uid"], meta.get("generation", 1))
        job = _job_named(jobs_by_owner, (namespace, MODEL_CACHE, name), cache_builders.job_name(ref))
        outcome = reconcile_model_cache(body, job, memo.kube, memo.config)
        _report(MODEL_CACHE, body, outcome, memo)
        _remember_write(MODEL_CACHE, body, outcome, memo)
    return outcome


def _report(kind: str, body, outcome: Outcome, memo) -> None:
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
        metrics.finished(kind, namespace, phase, meta.get("creationTimestamp"), getattr(status, "start_time", None),
                         getattr(status, "completion_time", None))


@contextmanager
def _counting_errors(kind: str, namespace: str, memo):
    """Count a pass that raised (kopf logs it and retries the event)."""
    try:
        yield
    except Exception:
        memo.metrics.reconcile_errors.labels(kind, namespace).inc()
        raise


# ---------------------------------------------------------------------------------------------- events


@kopf.on.event(GROUP, VERSION, "boltzpredictions")
def prediction_event(event, body, namespace, name, model_caches, jobs_by_owner, memo, **_):
    if event["type"] == "DELETED":
        _forget(PREDICTION, body, memo)
        return
    _prediction_pass(body, model_caches, jobs_by_owner, memo)


@kopf.on.event(GROUP, VERSION, "boltzgencampaigns")
def campaign_event(event, body, namespace, name, model_caches, jobs_by_owner, memo, **_):
    if event["type"] == "DELETED":
        _forget(CAMPAIGN, body, memo)
        return
    _campaign_pass(body, model_caches, jobs_by_owner, memo)


@kopf.on.event(GROUP, VERSION, "boltzmodelcaches")
def model_cache_event(event, body, namespace, name, predictions_by_cache, campaigns_by_cache, model_caches,
                      jobs_by_owner, memo, **_):
    if event["type"] == "DELETED":
        _forget(MODEL_CACHE, body, memo)
        return
    _model_cache_pass(body, jobs_by_owner, memo)
    # Runs waiting on this cache start now (or learn why not) without an event of their own. Cache events are
    # rare, and a pass that changes nothing writes nothing.
    for waiting in list(predictions_by_cache.get((namespace, name), [])):
        if (waiting.get("status") or {}).get("phase") in (None, PredictionPhase.WAITING_FOR_MODEL_CACHE.value):
            _prediction_pass(waiting, model_caches, jobs_by_owner, memo)
    for waiting in list(campaigns_by_cache.get((namespace, name), [])):
        # Designing too: a campaign whose shards are done may wait for the cache to run its filter Job.
        if (waiting.get("status") or {}).get("phase") in (None, CampaignPhase.WAITING_FOR_MODEL_CACHE.value,
                                                          CampaignPhase.DESIGNING.value):
            _campaign_pass(waiting, model_caches, jobs_by_owner, memo)


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_LABELS)
def job_event(event, body, namespace, name, labels, predictions, campaigns, model_caches, jobs_by_owner, memo, **_):
    kind, owner = labels.get(LABEL_OWNER_KIND), labels.get(LABEL_OWNER_NAME)
    if event["type"] == "DELETED":
        memo.failed_pods_seen.pop((namespace, name), None)
        return  # a finished Job's TTL ran out: the parent's status already holds the result
    _count_retries(kind, namespace, name, body, memo)
    if kind == PREDICTION and (parent := _one(predictions, (namespace, owner))) is not None:
        _prediction_pass(parent, model_caches, jobs_by_owner, memo)
    elif kind == MODEL_CACHE and (parent := _one(model_caches, (namespace, owner))) is not None:
        _model_cache_pass(parent, jobs_by_owner, memo)
    elif kind == CAMPAIGN and (parent := _one(campaigns, (namespace, owner))) is not None:
        _campaign_pass(parent, model_caches, jobs_by_owner, memo)


def _count_retries(kind: str, namespace: str, job_name: str, job, memo) -> None:
    """A Job whose failed count grew while it still runs has retried a worker: count it by the worker's error class."""
    failed = (job.get("status") or {}).get("failed", 0)
    seen = memo.failed_pods_seen.get((namespace, job_name), 0)
    memo.failed_pods_seen[(namespace, job_name)] = failed
    if failed <= seen or job_facts(job).state in (JobState.SUCCEEDED, JobState.FAILED):
        return
    worker = memo.kube.last_terminated_worker(namespace, job_name, WORKER_CONTAINER)
    if worker and worker.summary and worker.summary.error_class:
        reason = worker.summary.error_class.value
    elif worker:
        reason = ERROR_CLASS_OF_EXIT_CODE.get(worker.exit_code, ErrorClass.INTERNAL).value
    else:
        reason = "Unknown"
    memo.metrics.retries.labels(kind, namespace, reason).inc(failed - seen)

"""kopf wiring: thin handlers that hand observations to one reconcile pass per kind (reconcile/registry.py).

Only `on.event` and `index` handlers: they write nothing of kopf's own onto the objects (no annotations, no
finalizers). Children reach their parent through label-selected indices, never through handlers on the
children themselves. kopf fills every index before the first handler runs, so a restarted operator sees
the Jobs it created before it decides anything.
"""

from __future__ import annotations

import kopf

from boltz_operator.api import (
    CAMPAIGN_RESOURCE,
    GROUP,
    MODEL_CACHE_RESOURCE,
    PREDICTION_RESOURCE,
    SCREEN_RESOURCE,
    VERSION,
)
from boltz_operator.builders.common import (
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_OWNER_KIND,
    LABEL_OWNER_NAME,
    MANAGED_BY,
)
from boltz_operator.builders.prepare import ANNOTATION_MSA_KEY
from boltz_operator.builders.prepare import COMPONENT as PREPARE
from boltz_operator.reconcile.indices import finished, job_entry
from boltz_operator.reconcile.jobs import JobState, job_facts
from boltz_operator.reconcile.msa_gate import ALL
from boltz_operator.reconcile.passes import (
    count_retries,
    forget,
    run_pass,
    waiting_on_cache,
    waits_on_cache,
    wake_msa_waiters,
)
from boltz_operator.reconcile.registry import BY_KIND, CAMPAIGN, MODEL_CACHE, PREDICTION, SCREEN
from boltz_operator.startup import configure_operator

CHILD_LABELS = {LABEL_MANAGED_BY: MANAGED_BY}


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    configure_operator(settings, memo)


# ---------------------------------------------------------------------------------------------- indices
# Only what a pass reads (reconcile/indices.py): a finished run leaves them, a Job is kept as its few read fields.
# An empty dict takes the object out of an index (None would leave its previous value there).


@kopf.index(GROUP, VERSION, PREDICTION_RESOURCE.plural)
def predictions(namespace, name, body, **_):
    return {} if finished(body) else {(namespace, name): body}


@kopf.index(GROUP, VERSION, PREDICTION_RESOURCE.plural)
def predictions_by_cache(namespace, spec, body, **_):
    return {(namespace, spec.get("modelCache", "default")): body} if waits_on_cache(PREDICTION, body) else {}


@kopf.index(GROUP, VERSION, CAMPAIGN_RESOURCE.plural)
def campaigns(namespace, name, body, **_):
    return {} if finished(body) else {(namespace, name): body}


@kopf.index(GROUP, VERSION, CAMPAIGN_RESOURCE.plural)
def campaigns_by_cache(namespace, spec, body, **_):
    return {(namespace, spec.get("modelCache", "default")): body} if waits_on_cache(CAMPAIGN, body) else {}


@kopf.index(GROUP, VERSION, SCREEN_RESOURCE.plural)
def screens(namespace, name, body, **_):
    return {} if finished(body) else {(namespace, name): body}


@kopf.index(GROUP, VERSION, SCREEN_RESOURCE.plural)
def screens_by_cache(namespace, spec, body, **_):
    return {(namespace, spec.get("modelCache", "default")): body} if waits_on_cache(SCREEN, body) else {}


@kopf.index(GROUP, VERSION, MODEL_CACHE_RESOURCE.plural)
def model_caches(namespace, name, body, **_):
    return {(namespace, name): body}


@kopf.index("batch", "v1", "jobs", labels=CHILD_LABELS)
def jobs_by_owner(namespace, labels, body, **_):
    return {(namespace, labels.get(LABEL_OWNER_KIND), labels.get(LABEL_OWNER_NAME)): job_entry(body)}


@kopf.index("batch", "v1", "jobs", labels={**CHILD_LABELS, LABEL_COMPONENT: PREPARE})
def msa_fetches(namespace, labels, annotations, body, **_):
    """Prepare Jobs in flight that may call the MSA server: key -> owner, and ALL -> owner (reconcile/msa_gate.py)."""
    key = annotations.get(ANNOTATION_MSA_KEY)
    if not key or job_facts(body).state in (JobState.SUCCEEDED, JobState.FAILED):
        return {}
    owner = (labels.get(LABEL_OWNER_KIND), namespace, labels.get(LABEL_OWNER_NAME))
    return {key: owner, ALL: owner}


# ---------------------------------------------------------------------------------------------- events


@kopf.on.event(GROUP, VERSION, PREDICTION_RESOURCE.plural)
def prediction_event(event, body, predictions, screens, model_caches, jobs_by_owner, msa_fetches, memo, **_):
    if event["type"] == "DELETED":
        forget(PREDICTION, body, memo)
    else:
        run_pass(PREDICTION, body, model_caches, jobs_by_owner, memo, msa_fetches)
    wake_msa_waiters(_msa_runs(predictions, screens), model_caches, jobs_by_owner, msa_fetches, memo)


@kopf.on.event(GROUP, VERSION, SCREEN_RESOURCE.plural)
def screen_event(event, body, predictions, screens, model_caches, jobs_by_owner, msa_fetches, memo, **_):
    if event["type"] == "DELETED":
        forget(SCREEN, body, memo)
    else:
        run_pass(SCREEN, body, model_caches, jobs_by_owner, memo, msa_fetches)
    wake_msa_waiters(_msa_runs(predictions, screens), model_caches, jobs_by_owner, msa_fetches, memo)


def _msa_runs(predictions, screens) -> dict:
    """The kinds whose prepare fetches MSAs, each with its index of unfinished runs (for the MSA gate's wake-ups)."""
    return {PREDICTION.kind.kind: predictions, SCREEN.kind.kind: screens}


@kopf.on.event(GROUP, VERSION, CAMPAIGN_RESOURCE.plural)
def campaign_event(event, body, model_caches, jobs_by_owner, memo, **_):
    if event["type"] == "DELETED":
        return forget(CAMPAIGN, body, memo)
    run_pass(CAMPAIGN, body, model_caches, jobs_by_owner, memo)


@kopf.on.event(GROUP, VERSION, MODEL_CACHE_RESOURCE.plural)
def model_cache_event(
    event,
    body,
    namespace,
    name,
    predictions_by_cache,
    campaigns_by_cache,
    screens_by_cache,
    model_caches,
    jobs_by_owner,
    msa_fetches,
    memo,
    **_,
):
    if event["type"] == "DELETED":
        return forget(MODEL_CACHE, body, memo)
    run_pass(MODEL_CACHE, body, model_caches, jobs_by_owner, memo)
    # Runs waiting on this cache start now (or learn why not) without an event of their own. Cache events are
    # rare, and a pass that changes nothing writes nothing.
    for registration, by_cache in (
        (PREDICTION, predictions_by_cache),
        (CAMPAIGN, campaigns_by_cache),
        (SCREEN, screens_by_cache),
    ):
        for waiting in waiting_on_cache(registration, by_cache.get((namespace, name), [])):
            run_pass(registration, waiting, model_caches, jobs_by_owner, memo, msa_fetches)


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_LABELS)
def job_event(
    event,
    body,
    namespace,
    name,
    labels,
    predictions,
    campaigns,
    screens,
    model_caches,
    jobs_by_owner,
    msa_fetches,
    memo,
    **_,
):
    if event["type"] == "DELETED":
        return memo.book.forget_job(
            namespace, name
        )  # a finished Job's TTL ran out: its parent's status holds the result
    registration = BY_KIND.get(labels.get(LABEL_OWNER_KIND))
    if registration is None:
        return None
    count_retries(registration, namespace, name, body, memo)
    parents = {
        PREDICTION.kind.kind: predictions,
        CAMPAIGN.kind.kind: campaigns,
        SCREEN.kind.kind: screens,
        MODEL_CACHE.kind.kind: model_caches,
    }
    store = parents[registration.kind.kind].get((namespace, labels.get(LABEL_OWNER_NAME)))
    if store:  # none for a finished run (it left the index): its pass would change nothing
        run_pass(registration, next(iter(store)), model_caches, jobs_by_owner, memo, msa_fetches)
    wake_msa_waiters(_msa_runs(predictions, screens), model_caches, jobs_by_owner, msa_fetches, memo)
    return None

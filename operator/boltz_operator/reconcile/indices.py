"""What the kopf indices keep: only what a pass reads, so that the operator's memory follows the work in progress,
not the work done.

kopf keeps every index value for as long as its object exists. Whole bodies made the operator grow by about 105 KB
per finished prediction (its body, and its Job's, kept 24 h by the Job TTL: the pod template alone is most of it),
until the chart's memory limit killed it. Now:

- a Job is kept as the few fields the reconcilers read (`job_entry`; `jobs.job_facts` and the campaign's index
  counts read only `metadata.name`, `spec.suspend` and `status`);
- a run (prediction, campaign) is kept whole while it is not finished: a Job event runs its parent's pass on that
  body. A finished one (terminal phase, observedGeneration current) leaves the indices: its pass would change
  nothing (a finished run keeps its result; a new generation is recorded by the run's own event, which carries the
  whole body), so a Job event for it has nothing to do;
- the by-cache indices keep only the runs a change of their model cache may start (`Registration.waits_on_cache_in`).

Model caches are few (one or two a namespace) and are kept whole.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from boltz_operator.api import CampaignPhase, PredictionPhase, ScreenPhase

FINISHED_PHASES = frozenset(
    {
        PredictionPhase.SUCCEEDED.value,
        PredictionPhase.FAILED.value,
        CampaignPhase.SUCCEEDED.value,
        CampaignPhase.FAILED.value,
        ScreenPhase.SUCCEEDED.value,
        ScreenPhase.FAILED.value,
    }
)
# Of a Job condition, what job_facts reads (lastProbeTime is left out).
_CONDITION_FIELDS = ("type", "status", "reason", "message", "lastTransitionTime")


def job_entry(body: Mapping) -> dict:
    """A Job as the indices keep it: metadata (name, namespace, uid), `spec.suspend` and the status, as plain dicts
    (copies: nothing of the watch event's body stays referenced). `jobs.job_facts` gives the same facts for it as for
    the whole body."""
    meta = body["metadata"]
    status = dict(body.get("status") or {})
    if status.get("conditions"):
        status["conditions"] = [{k: c[k] for k in _CONDITION_FIELDS if k in c} for c in status["conditions"]]
    entry = {
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "status": copy.deepcopy(status),
    }
    suspend = (body.get("spec") or {}).get("suspend")
    if suspend is not None:
        entry["spec"] = {"suspend": suspend}
    return entry


def finished(body: Mapping) -> bool:
    """A run (prediction, campaign) in a terminal phase whose status has seen its current generation: no pass of it
    can change anything any more."""
    status = body.get("status") or {}
    return status.get("phase") in FINISHED_PHASES and status.get("observedGeneration") == (
        body.get("metadata") or {}
    ).get("generation")

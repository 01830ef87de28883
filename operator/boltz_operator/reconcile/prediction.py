"""BoltzPrediction: from (the resource, its model cache, its prepare and GPU Jobs, the workers' summaries) to children
and status. The GPU Job is created only after the CPU prepare Job succeeded: input that boltz refuses never gets a
GPU, and no GPU waits on an MSA server.

Level-based: every pass recomputes the status from what it observes and writes it only when it changed. The
Job and ConfigMap have deterministic names, so a pass that repeats a create after a crash finds them there.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from boltz_operator.api import (
    PREDICTION_RESOURCE,
    BoltzPrediction,
    BoltzPredictionSpec,
    BoltzPredictionStatus,
    PredictionPhase,
)
from boltz_operator.api.modelcache import Bundle
from boltz_operator.api.prediction import ChainMsaStatus, MsaSourceName, PredictionResults
from boltz_operator.api.prediction import PredictionConditionType as Cond
from boltz_operator.builders import prediction as builders
from boltz_operator.builders import prepare
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.builders.results import NoResultsStore
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile import prepare_step
from boltz_operator.reconcile.cache_gate import cache_condition, cache_not_ready, ready_claim, waiting_for_cache
from boltz_operator.reconcile.jobs import JobState, describe_failure, job_facts
from boltz_operator.reconcile.msa_gate import MsaGateView, Wait
from boltz_operator.reconcile.status import (
    Outcome,
    PassContext,
    failed_status,
    open_run,
    write_status,
)
from boltz_operator.render import render_boltz_input, validate_prediction

log = logging.getLogger(__name__)
PLURAL = PREDICTION_RESOURCE.plural
_PHASE_OF_STATE = {
    JobState.QUEUED: PredictionPhase.QUEUED,
    JobState.PENDING: PredictionPhase.PENDING,
    JobState.RUNNING: PredictionPhase.RUNNING,
}
TERMINAL = (PredictionPhase.SUCCEEDED, PredictionPhase.FAILED)
PredictionPass = PassContext[BoltzPredictionSpec, BoltzPredictionStatus]


def reconcile_prediction(
    body: dict,
    cache_body: dict | None,
    job: dict | None,
    kube: KubeApi,
    config: OperatorConfig,
    now: datetime | None = None,
    *,
    prepare_job: dict | None = None,
    msa: MsaGateView | None = None,
    in_flight: frozenset[str] = frozenset(),
) -> Outcome:
    """One pass: check the spec, wait for the model cache, prepare on CPU (waiting for the MSA gate when the input
    needs the MSA server), then the GPU Job (`job`), then its outcome. `in_flight`: the steps (prepare, predict) whose Job
    this process created and the watch has not delivered yet (nothing to do for them). `msa`: the MSA gate (None:
    every prepare may fetch at once, as in unit tests of other steps)."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    meta = body["metadata"]
    ref = OwnerRef.of(builders.KIND, meta)
    generation = meta.get("generation")
    outcome = Outcome()
    prediction = open_run(BoltzPrediction, body, kube, PLURAL, PredictionPhase.FAILED, TERMINAL, now, outcome)
    if prediction is None:
        return outcome
    status = prediction.status

    ctx = PassContext(
        ref=ref, spec=prediction.spec, status=status, generation=generation, now=now, kube=kube, config=config,
        outcome=outcome,
    )  # fmt: skip
    if job is not None:
        if prepare_job is not None and _prepared_reason(status) != "Prepared":
            # The pass that created the GPU Job was cut off before its status write (Prepared, status.msa): replay
            # it from the same prepare summary; its create answers "already there".
            ctx.status = _before_gpu(ctx, cache_body, prepare_job, msa)
        return write_status(kube, PLURAL, body, _from_job(ctx, job), outcome)
    if builders.COMPONENT in in_flight or (prepare_job is None and prepare.COMPONENT in in_flight):
        outcome.phase, outcome.status = status.phase, status
        return outcome  # creating it again would only earn a 409
    return write_status(kube, PLURAL, body, _before_gpu(ctx, cache_body, prepare_job, msa), outcome)


def _fail(ctx: PredictionPass, reason: str, message: str, condition: Cond | None = None) -> BoltzPredictionStatus:
    ctx.outcome.events.append(("Warning", reason, message))
    status = failed_status(ctx.status, PredictionPhase.FAILED, reason, message, ctx.generation, ctx.now)
    if condition is not None:
        status = updated(
            status,
            {
                "conditions": set_condition(
                    status.conditions, condition.value, False, reason, message, ctx.generation, ctx.now
                )
            },
        )
    return status


def _before_gpu(
    ctx: PredictionPass, cache_body: dict | None, prepare_job: dict | None, msa: MsaGateView | None
) -> BoltzPredictionStatus:
    """Everything before the GPU Job: spec checks, the cache gate, the MSA gate, the prepare Job and its outcome."""
    spec, status, ref, config, generation, now = ctx.spec, ctx.status, ctx.ref, ctx.config, ctx.generation, ctx.now
    doc, files = render_boltz_input(spec)
    errors = validate_prediction(spec, doc)
    if errors:
        return _fail(ctx, "InvalidInput", "; ".join(errors))
    try:
        placed = prepare_step.place(ctx, doc, spec.msa_server, spec.results)
    except NoResultsStore as err:
        return _fail(ctx, "NoResultsStore", str(err))
    results, request, store = placed.results, placed.request, placed.store

    waiting = cache_not_ready(spec.model_cache, cache_body, Bundle.BOLTZ2)
    if waiting:
        return waiting_for_cache(ctx, waiting, PredictionPhase.WAITING_FOR_MODEL_CACHE)
    claim = ready_claim(cache_body)
    conditions = cache_condition(status.conditions, spec.model_cache, None, generation, now)
    owner = prepare_step.owner_of(ref)

    if prepare_job is None:
        admission = prepare_step.admit(owner, placed, msa)
        if isinstance(admission, Wait):
            if status.phase != PredictionPhase.PREPARING or status.message != admission.message:
                ctx.outcome.events.append(("Normal", admission.reason, admission.message))
            return _preparing(ctx, conditions, admission.reason, admission.message)
        prepare_run = prepare.build_run(ref, spec, files, results, request, store)
        # The GPU run is decided now too (the stored MSAs' paths follow from the store and the key): one ConfigMap.
        predict_doc, msa_downloads = builders.with_stored_msas(doc, request, store)
        predict_run = builders.build_run(ref, spec, files, results, msa_downloads)
        ctx.kube.create(builders.build_configmap(ref, predict_doc, predict_run, prepare=(doc, prepare_run)))
        ctx.outcome.created_job = ctx.kube.create(
            prepare.build_job(ref, spec, prepare_run, files, results, store, claim, config, fetch=admission.fetch)
        )
        ctx.outcome.created_step = prepare.COMPONENT
        what = "checking the input with boltz" + (" and looking up its MSAs" if request else "")
        return _preparing(ctx, conditions, "Preparing", f"{what} (Job {prepare.job_name(ref.name)}, no GPU)")

    facts = job_facts(prepare_job)
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        if status.phase == PredictionPhase.PREPARING and _prepared_reason(status) == "Preparing":
            return status
        return _preparing(ctx, conditions, "Preparing", f"preparing on CPU (Job {facts.name}, no GPU)")
    summary, failure = prepare_step.finished_prepare(ctx, facts, owner, placed, msa)
    if failure is not None:
        reason, message = failure
        ctx.status = updated(status, {"conditions": conditions})
        return _fail(ctx, reason, f"prepare: {message} (no GPU was used)", Cond.PREPARED)

    # Prepared: the GPU run (in the run ConfigMap since prepare started) reads every MSA from a file.
    run = builders.build_run(ref, spec, files, results, builders.with_stored_msas(doc, request, store)[1])
    ctx.outcome.created_job = ctx.kube.create(
        builders.build_job(ref, spec, run, files, results, claim, config, store=store)
    )
    ctx.outcome.created_step = builders.COMPONENT
    sources = summary.msas if summary else []
    conditions = set_condition(
        conditions, Cond.PREPARED.value, True, "Prepared", _prepared_message(sources), generation, now
    )
    conditions = set_condition(
        conditions,
        Cond.JOB_CREATED.value,
        True,
        "Created",
        f"Job {builders.job_name(ref.name)} created",
        generation,
        now,
    )
    return updated(
        status,
        {
            "phase": PredictionPhase.PENDING,
            "job_name": builders.job_name(ref.name),
            "message": "waiting for a GPU",
            "observed_generation": generation,
            "conditions": conditions,
            "msa": [ChainMsaStatus(chain=m.chain, source=MsaSourceName(m.source)) for m in sources] or None,
        },
    )


def _preparing(ctx: PredictionPass, conditions: list, reason: str, message: str) -> BoltzPredictionStatus:
    return updated(
        ctx.status,
        {
            "phase": PredictionPhase.PREPARING,
            "message": message,
            "observed_generation": ctx.generation,
            "conditions": set_condition(
                conditions, Cond.PREPARED.value, False, reason, message, ctx.generation, ctx.now
            ),
        },
    )


def _prepared_reason(status: BoltzPredictionStatus) -> str | None:
    return next((c.reason for c in status.conditions if c.type == Cond.PREPARED.value), None)


def _prepared_message(sources: list) -> str:
    if not sources:
        return "input checked by boltz"
    by_source: dict[str, list[str]] = {}
    for m in sources:
        by_source.setdefault(m.source, []).append(m.chain)
    return "input checked by boltz; MSAs: " + ", ".join(
        f"{source} ({', '.join(chains)})" for source, chains in sorted(by_source.items())
    )


def _from_job(ctx: PredictionPass, job: dict) -> BoltzPredictionStatus:
    status, spec, ref, kube, generation, now = ctx.status, ctx.spec, ctx.ref, ctx.kube, ctx.generation, ctx.now
    outcome = ctx.outcome
    facts = job_facts(job)
    # Never backwards (a pod being replaced is counted by neither side for a moment); unset until a pod exists.
    attempts = max(facts.attempts, status.attempts or 0) or None
    update: dict[str, Any] = {
        "job_name": facts.name,
        "attempts": attempts,
        "start_time": facts.start_time or status.start_time,
        "observed_generation": generation,
        # Also when an earlier operator created the Job and died before saying so.
        "conditions": set_condition(
            status.conditions, Cond.JOB_CREATED.value, True, "Created", f"Job {facts.name} created", generation, now
        ),
    }
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        if status.phase == _PHASE_OF_STATE[facts.state] and status.job_name == facts.name:
            return status  # same phase: attempts and startTime ride along with the next phase change (one write less)
        phase = _PHASE_OF_STATE[facts.state]
        message = {
            JobState.QUEUED: "the Job is suspended (queued, e.g. by Kueue)",
            JobState.PENDING: "waiting for a GPU",
            JobState.RUNNING: "running boltz predict",
        }[facts.state]
        return updated(status, {**update, "phase": phase, "message": message})

    worker = kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
    summary = worker.summary if worker else None
    update["completion_time"] = facts.completion_time or now
    if facts.state == JobState.SUCCEEDED:
        results = PredictionResults()
        if summary is not None:
            base = summary.results_uri or ""
            results = PredictionResults(
                uri=summary.results_uri,
                structures=[f"{base}/{s}" for s in summary.structures],
                confidence_score=summary.confidence_score,
                ptm=summary.ptm,
                iptm=summary.iptm,
                complex_plddt=summary.complex_plddt,
                affinity_pred_value=summary.affinity_pred_value,
                affinity_probability_binary=summary.affinity_probability_binary,
                report=f"{base}/{summary.report}" if summary.report else None,
            )
        message = (
            "prediction complete" if summary else "prediction complete; the worker's summary was not found (pods gone?)"
        )
        conditions = set_condition(
            update["conditions"], Cond.COMPLETE.value, True, "Succeeded", message, generation, now
        )
        return updated(
            status,
            {
                **update,
                "phase": PredictionPhase.SUCCEEDED,
                "results": results,
                "message": message,
                "conditions": conditions,
            },
        )

    reason, message = describe_failure(
        facts,
        worker.exit_code if worker else None,
        summary,
        spec.timeout_seconds,
        worker.reason if worker else None,
        ctx.config.default_memory if spec.resources.memory is None else spec.resources.memory,
    )
    outcome.events.append(("Warning", reason, message))
    conditions = set_condition(update["conditions"], Cond.FAILED.value, True, reason, message, generation, now)
    return updated(status, {**update, "phase": PredictionPhase.FAILED, "message": message, "conditions": conditions})

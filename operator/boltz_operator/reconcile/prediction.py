"""BoltzPrediction: from (the resource, its model cache, its Job, the worker's summary) to children and status.

Level-based: every pass recomputes the status from what it observes and writes it only when it changed. The
Job and ConfigMap have deterministic names, so a pass that repeats a create after a crash finds them there.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from boltz_operator.api import (
    PREDICTION_RESOURCE,
    BoltzPrediction,
    BoltzPredictionSpec,
    BoltzPredictionStatus,
    PredictionPhase,
)
from boltz_operator.api.modelcache import Bundle
from boltz_operator.api.prediction import PredictionConditionType as Cond
from boltz_operator.api.prediction import PredictionResults
from boltz_operator.builders import prediction as builders
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.builders.results import NoResultsStore, place_results
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile.cache_gate import cache_condition, cache_not_ready, ready_claim
from boltz_operator.reconcile.jobs import JobState, describe_failure, job_facts
from boltz_operator.reconcile.status import (
    Outcome,
    PassContext,
    failed_status,
    first_validation_error,
    stored_status,
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


def reconcile_prediction(
    body: dict,
    cache_body: dict | None,
    job: dict | None,
    kube: KubeApi,
    config: OperatorConfig,
    now: datetime | None = None,
    job_in_flight: bool = False,
) -> Outcome:
    """job_in_flight: this process created the Job and the watch has not delivered it yet (nothing to do)."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    meta = body["metadata"]
    ref = OwnerRef.of(builders.KIND, meta)
    generation = meta.get("generation")
    outcome = Outcome()
    try:
        prediction = BoltzPrediction.model_validate(
            {"spec": body.get("spec") or {}, "status": body.get("status") or {}}
        )
    except ValidationError as err:
        failed = failed_status(
            stored_status(BoltzPredictionStatus, body),
            PredictionPhase.FAILED,
            "InvalidSpec",
            f"invalid spec: {first_validation_error(err)}",
            generation,
            now,
        )
        return write_status(kube, PLURAL, body, failed, outcome)
    status = prediction.status
    if status.phase in TERMINAL:
        # Finished for good: the run inputs are immutable, so a later generation (a changed scheduling field)
        # leaves the result as it is, even after the Job is garbage-collected.
        return write_status(kube, PLURAL, body, updated(status, {"observed_generation": generation}), outcome)

    spec = prediction.spec
    if job is None and job_in_flight:
        outcome.phase, outcome.status = status.phase, status
        return outcome  # creating it again would only earn a 409
    if job is None:
        doc, files = render_boltz_input(spec)
        errors = validate_prediction(spec, doc)
        if errors:
            outcome.events.append(("Warning", "InvalidInput", errors[0]))
            return write_status(
                kube,
                PLURAL,
                body,
                failed_status(
                    prediction.status, PredictionPhase.FAILED, "InvalidInput", "; ".join(errors), generation, now
                ),
                outcome,
            )
        try:
            results = place_results(spec.results, config.default_results, ref.namespace, ref.name, ref.uid)
        except NoResultsStore as err:
            outcome.events.append(("Warning", "NoResultsStore", str(err)))
            return write_status(
                kube,
                PLURAL,
                body,
                failed_status(prediction.status, PredictionPhase.FAILED, "NoResultsStore", str(err), generation, now),
                outcome,
            )

        waiting = cache_not_ready(spec.model_cache, cache_body, Bundle.BOLTZ2)
        if waiting:
            reason, message = waiting
            new = updated(
                status,
                {
                    "phase": PredictionPhase.WAITING_FOR_MODEL_CACHE,
                    "message": message,
                    "observed_generation": generation,
                    "conditions": cache_condition(status.conditions, spec.model_cache, waiting, generation, now),
                },
            )
            if status.phase != PredictionPhase.WAITING_FOR_MODEL_CACHE:
                outcome.events.append(("Normal", reason, message))
            return write_status(kube, PLURAL, body, new, outcome)

        run = builders.build_run(ref, spec, files, results)
        claim = ready_claim(cache_body)
        kube.create(builders.build_configmap(ref, doc, run))
        outcome.created_job = kube.create(builders.build_job(ref, spec, run, files, results, claim, config))
        outcome.created_step = builders.COMPONENT
        conditions = cache_condition(status.conditions, spec.model_cache, None, generation, now)
        conditions = set_condition(
            conditions,
            Cond.JOB_CREATED.value,
            True,
            "Created",
            f"Job {builders.job_name(ref.name)} created",
            generation,
            now,
        )
        new = updated(
            status,
            {
                "phase": PredictionPhase.PENDING,
                "job_name": builders.job_name(ref.name),
                "message": "waiting for a GPU",
                "observed_generation": generation,
                "conditions": conditions,
            },
        )
        return write_status(kube, PLURAL, body, new, outcome)

    ctx = PassContext(
        ref=ref, spec=spec, status=status, generation=generation, now=now, kube=kube, config=config, outcome=outcome
    )
    return write_status(kube, PLURAL, body, _from_job(ctx, job), outcome)


def _from_job(ctx: PassContext[BoltzPredictionSpec, BoltzPredictionStatus], job: dict) -> BoltzPredictionStatus:
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

    reason, message = describe_failure(facts, worker.exit_code if worker else None, summary, spec.timeout_seconds)
    outcome.events.append(("Warning", reason, message))
    conditions = set_condition(update["conditions"], Cond.FAILED.value, True, reason, message, generation, now)
    return updated(status, {**update, "phase": PredictionPhase.FAILED, "message": message, "conditions": conditions})

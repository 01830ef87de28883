"""BoltzGenCampaign: from (the resource, its model cache, its design and filter Jobs) to children and status.

Level-based like the prediction: every pass recomputes the status from what it observes and writes only changes.
The order is enforced by what exists: the filter Job is created only once the design Job has finished with enough
shards, so a restarted operator picks up wherever the Jobs are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boltz_contract as contract
from boltz_operator.api import (
    CAMPAIGN_RESOURCE,
    BoltzGenCampaign,
    BoltzGenCampaignStatus,
    BoltzModelCache,
    CampaignPhase,
)
from boltz_operator.api.campaign import (
    BoltzGenCampaignSpec,
    CampaignProgress,
    CampaignResults,
    TopDesign,
)
from boltz_operator.api.campaign import CampaignConditionType as Cond
from boltz_operator.api.modelcache import Bundle
from boltz_operator.builders import campaign as builders
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.builders.results import NoResultsStore, ResultsPlacement, place_results
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile.analysis_memory import analysis_memory_condition
from boltz_operator.reconcile.cache_gate import cache_condition, cache_not_ready, ready_claim, waiting_for_cache
from boltz_operator.reconcile.estimate import gpu_hour_estimate
from boltz_operator.reconcile.jobs import JobState, count_indexes, describe_failure, job_facts, shard_errors
from boltz_operator.reconcile.status import (
    Outcome,
    PassContext,
    failed_status,
    open_run,
    write_status,
)
from boltz_operator.render import render_design_spec

log = logging.getLogger(__name__)
PLURAL = CAMPAIGN_RESOURCE.plural
TERMINAL = (CampaignPhase.SUCCEEDED, CampaignPhase.FAILED)
MAX_SHARD_ERRORS = 5  # distinct shard errors quoted in a message


def reconcile_campaign(
    body: dict,
    cache_body: dict | None,
    design_job: dict | None,
    filter_job: dict | None,
    kube: KubeApi,
    config: OperatorConfig,
    now: datetime | None = None,
    in_flight: frozenset[str] = frozenset(),
) -> Outcome:
    """in_flight: the steps ("design", "filter") whose Job this process created and the watch has not delivered."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    meta = body["metadata"]
    ref = OwnerRef.of(builders.KIND, meta)
    generation = meta.get("generation")
    outcome = Outcome()
    campaign = open_run(BoltzGenCampaign, body, kube, PLURAL, CampaignPhase.FAILED, TERMINAL, now, outcome)
    if campaign is None:
        return outcome
    status, spec = campaign.status, campaign.spec
    status = analysis_memory_condition(status, spec, config, generation, now, outcome)

    try:
        results = place_results(spec.results, config.default_results, ref.namespace, ref.name, ref.uid)
    except NoResultsStore as err:
        outcome.events.append(("Warning", "NoResultsStore", str(err)))
        return write_status(
            kube,
            PLURAL,
            body,
            failed_status(status, CampaignPhase.FAILED, "NoResultsStore", str(err), generation, now),
            outcome,
        )
    ctx = CampaignPass(
        ref=ref,
        spec=spec,
        status=status,
        generation=generation,
        now=now,
        kube=kube,
        config=config,
        outcome=outcome,
        results=results,
        cache=cache_body,
    )

    # A filter Job means the designs are done: the design Job may be gone by now (its TTL runs from when it finished,
    # and the filter Job may wait in a queue that long), and must not be created again.
    if design_job is None and filter_job is None:
        if builders.DESIGN in in_flight:
            outcome.phase, outcome.status = status.phase, status
            return outcome  # creating it again would only earn a 409
        return write_status(kube, PLURAL, body, _start(ctx), outcome)
    if filter_job is None:
        assert design_job is not None  # both None is the start, above
        return write_status(
            kube, PLURAL, body, _designing(ctx, design_job, filter_in_flight=builders.FILTER in in_flight), outcome
        )
    return write_status(kube, PLURAL, body, _filtering(ctx, design_job, filter_job), outcome)


@dataclass
class CampaignPass(PassContext[BoltzGenCampaignSpec, BoltzGenCampaignStatus]):
    """A campaign's pass context, plus its results store and its model cache's body (None when it does not exist)."""

    results: ResultsPlacement
    cache: dict | None


# ---------------------------------------------------------------------------------------------- steps


def _start(ctx: CampaignPass) -> BoltzGenCampaignStatus:
    status, spec, ref, results, outcome = ctx.status, ctx.spec, ctx.ref, ctx.results, ctx.outcome
    kube, config, generation, now, cache_body = ctx.kube, ctx.config, ctx.generation, ctx.now, ctx.cache
    progress = _progress(spec, succeeded=0, failed=0, running=0)
    estimate = status.estimate or gpu_hour_estimate(spec, config.boltzgen_gpu_seconds_per_design)
    waiting = cache_not_ready(spec.model_cache, cache_body, Bundle.BOLTZGEN)
    if waiting:
        extra = {"progress": progress, "shards": _shards_text(progress), "estimate": estimate}
        return waiting_for_cache(ctx, waiting, CampaignPhase.WAITING_FOR_MODEL_CACHE, extra)
    claim = ready_claim(cache_body)
    # Rendered only where a child is built: not on each of the many Job events of a running campaign.
    doc, files = render_design_spec(spec.design_spec)
    design_run = builders.build_design_run(spec, files, results)
    filter_run = builders.build_filter_run(spec, files, results)
    kube.create(builders.build_configmap(ref, doc, design_run, filter_run))
    outcome.created_job = kube.create(builders.build_design_job(ref, spec, files, results, claim, config))
    outcome.created_step = builders.DESIGN
    name = builders.job_name(ref.name, builders.DESIGN)
    if outcome.created_job:
        outcome.events.append(
            (
                "Normal",
                "DesignJobCreated",
                f"Job {name}: {spec.shard_count} shards of about {spec.num_designs // spec.shard_count} "
                f"designs; estimate {estimate.gpu_hours} GPU-hours",
            )
        )
    conditions = cache_condition(status.conditions, spec.model_cache, None, generation, now)
    conditions = set_condition(
        conditions, Cond.DESIGN_JOB_CREATED.value, True, "Created", f"Job {name} created", generation, now
    )
    return updated(
        status,
        {
            "phase": CampaignPhase.PENDING,
            "message": "waiting for GPUs",
            "observed_generation": generation,
            "progress": progress,
            "shards": _shards_text(progress),
            "estimate": estimate,
            "job_names": [name],
            "conditions": conditions,
            "results": CampaignResults(uri=results.target.uri),
        },
    )


def _designing(ctx: CampaignPass, design_job: dict, filter_in_flight: bool) -> BoltzGenCampaignStatus:
    status, spec, ref, results, outcome = ctx.status, ctx.spec, ctx.ref, ctx.results, ctx.outcome
    kube, config, generation, now, cache_body = ctx.kube, ctx.config, ctx.generation, ctx.now, ctx.cache
    facts = job_facts(design_job)
    job_status = design_job.get("status") or {}
    succeeded = count_indexes(job_status.get("completedIndexes"))
    failed = count_indexes(job_status.get("failedIndexes"))
    progress = _progress(spec, succeeded=succeeded, failed=failed, running=job_status.get("active", 0))
    name = facts.name
    update: dict[str, Any] = {
        "observed_generation": generation,
        "progress": progress,
        "shards": _shards_text(progress),
        "start_time": facts.start_time or status.start_time,
        "job_names": [name],
        "conditions": set_condition(
            status.conditions, Cond.DESIGN_JOB_CREATED.value, True, "Created", f"Job {name} created", generation, now
        ),
    }
    if facts.state in (JobState.QUEUED, JobState.PENDING) and not (succeeded or failed):
        message = (
            "the design Job is suspended (queued, e.g. by Kueue)"
            if facts.state == JobState.QUEUED
            else "waiting for GPUs"
        )
        return updated(status, {**update, "phase": CampaignPhase.PENDING, "message": message})
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        message = (
            f"{succeeded}/{spec.shard_count} shards done"
            + (f", {failed} failed" if failed else "")
            + f", {progress.shards_running} running"
        )
        return updated(status, {**update, "phase": CampaignPhase.DESIGNING, "message": message})

    needed = builders.min_successful_shards(spec)
    if facts.state == JobState.FAILED and (facts.failure_reason != "FailedIndexes" or succeeded < needed):
        reason, message = _design_failure(ctx, facts, succeeded, failed, needed)
        outcome.events.append(("Warning", reason, message))
        return failed_status(updated(status, update), CampaignPhase.FAILED, reason, message, generation, now)

    # Enough shards: on to filtering (what the filter Job gets is what the shards' markers say, not this count).
    if facts.state == JobState.FAILED:
        shard_note = f"{succeeded}/{spec.shard_count} shards succeeded ({failed} failed; at least {needed} needed)"
        errors = shard_errors(kube, ref.namespace, name, MAX_SHARD_ERRORS)
        done_reason = "PartialSuccess"
        done_message = f"{shard_note}; filtering the designs of the successful shards" + (
            f". Shard errors: {errors}" if errors else ""
        )
    else:
        done_reason, done_message = "AllShardsSucceeded", f"all {spec.shard_count} shards succeeded"
    conditions = set_condition(
        update["conditions"], Cond.DESIGNS_COMPLETE.value, True, done_reason, done_message, generation, now
    )
    filter_name = builders.job_name(ref.name, builders.FILTER)
    if not filter_in_flight:
        claim = BoltzModelCache.model_validate(cache_body).status.claim_name if cache_body else None
        if claim is None:
            # The cache went away after the shards ran: wait for it (its own status says why).
            message = f"{done_message}; waiting for model cache '{spec.model_cache}' to filter"
            return updated(
                status, {**update, "phase": CampaignPhase.DESIGNING, "message": message, "conditions": conditions}
            )
        _, files = render_design_spec(spec.design_spec)
        outcome.created_job = kube.create(builders.build_filter_job(ref, spec, files, results, claim, config))
        outcome.created_step = builders.FILTER
        if outcome.created_job:  # once: a later pass (the watch catching up) says nothing again
            if done_reason == "PartialSuccess":
                outcome.events.append(("Warning", done_reason, done_message))
            outcome.events.append(("Normal", "FilterJobCreated", f"Job {filter_name}: {done_message}"))
    conditions = set_condition(
        conditions, Cond.FILTER_JOB_CREATED.value, True, "Created", f"Job {filter_name} created", generation, now
    )
    return updated(
        status,
        {
            **update,
            "phase": CampaignPhase.FILTERING,
            "job_names": [name, filter_name],
            "message": done_message,
            "conditions": conditions,
        },
    )


def _filtering(ctx: CampaignPass, design_job: dict | None, filter_job: dict) -> BoltzGenCampaignStatus:
    status, spec, ref, results, outcome = ctx.status, ctx.spec, ctx.ref, ctx.results, ctx.outcome
    kube, generation, now = ctx.kube, ctx.generation, ctx.now
    facts = job_facts(filter_job)
    design_name = builders.job_name(ref.name, builders.DESIGN)
    job_status = design_job.get("status") or {} if design_job else {}
    progress = status.progress or _progress(spec, 0, 0, 0)
    if job_status:
        progress = _progress(
            spec, count_indexes(job_status.get("completedIndexes")), count_indexes(job_status.get("failedIndexes")), 0
        )
    update: dict[str, Any] = {
        "observed_generation": generation,
        "job_names": [design_name, facts.name],
        "progress": progress,
        "shards": _shards_text(progress),
        "conditions": set_condition(
            status.conditions,
            Cond.FILTER_JOB_CREATED.value,
            True,
            "Created",
            f"Job {facts.name} created",
            generation,
            now,
        ),
    }
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        if status.phase == CampaignPhase.FILTERING:
            return updated(status, {**update, "message": status.message})
        return updated(status, {**update, "phase": CampaignPhase.FILTERING, "message": "ranking the designs"})

    worker = kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
    summary = worker.summary if worker else None
    update["completion_time"] = facts.completion_time or now
    if facts.state == JobState.SUCCEEDED:
        base = results.target.uri
        final = f"{base}/{contract.FILTER_DIR}/final_ranked_designs"
        budget = spec.effective_budget
        top = [TopDesign.model_validate(t.model_dump()) for t in summary.top_designs] if summary else []
        if summary:
            progress = _filtered_progress(progress, summary)
        message = (
            _filtered_message(progress, summary, spec)
            if summary
            else ("campaign complete; the filter's summary was not found (pods gone?)")
        )
        conditions = set_condition(
            update["conditions"], Cond.COMPLETE.value, True, "Succeeded", message, generation, now
        )
        return updated(
            status,
            {
                **update,
                "phase": CampaignPhase.SUCCEEDED,
                "message": message,
                "conditions": conditions,
                "progress": progress,
                "shards": _shards_text(progress),
                "results": CampaignResults(
                    uri=base,
                    final_designs_uri=f"{final}/final_{budget}_designs",
                    metrics_csv_uri=f"{final}/all_designs_metrics.csv",
                    top_designs=top,
                    report=f"{summary.results_uri}/{summary.report}" if summary and summary.report else None,
                ),
            },
        )
    reason, message = describe_failure(
        facts,
        worker.exit_code if worker else None,
        summary,
        spec.timeout_seconds,
        worker.reason if worker else None,
        spec.resources.memory or ctx.config.default_memory,
    )
    message = f"filter Job failed: {message}"
    outcome.events.append(("Warning", reason, message))
    return failed_status(updated(status, update), CampaignPhase.FAILED, reason, message, generation, now)


def _design_failure(ctx: CampaignPass, facts, succeeded: int, failed: int, needed: int) -> tuple[str, str]:
    spec, ref, kube = ctx.spec, ctx.ref, ctx.kube
    if facts.failure_reason in ("FailedIndexes", "MaxFailedIndexesExceeded"):
        errors = shard_errors(kube, ref.namespace, facts.name, MAX_SHARD_ERRORS)
        message = (
            f"{failed} of {spec.shard_count} shards failed after {spec.retries_per_shard} retries each; "
            f"{succeeded} succeeded, at least {needed} needed (minSuccessfulShardFraction "
            f"{spec.min_successful_shard_fraction}). Shard errors: {errors or 'none recorded (pods gone?)'}"
        )
        return "TooManyShardsFailed", message
    worker = kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
    reason, message = describe_failure(
        facts,
        worker.exit_code if worker else None,
        worker.summary if worker else None,
        spec.timeout_seconds,
        worker.reason if worker else None,
        spec.resources.memory or ctx.config.default_memory,
    )
    return reason, f"design Job failed: {message}"


# ---------------------------------------------------------------------------------------------- pieces


def _progress(spec: BoltzGenCampaignSpec, succeeded: int, failed: int, running: int) -> CampaignProgress:
    # Designs of the finished shards, as asked of them; the filter's summary replaces this with the count merged.
    designs = spec.num_designs if succeeded == spec.shard_count else succeeded * (spec.num_designs // spec.shard_count)
    requested = spec.num_designs * (spec.step_options.inverse_fold_num_sequences or 1)  # each sequence is a design
    return CampaignProgress(
        shards_total=spec.shard_count,
        shards_succeeded=succeeded,
        shards_failed=failed,
        shards_running=running,
        designs_requested=requested,
        designs_completed=designs,
    )


def _filtered_progress(progress: CampaignProgress, summary: contract.RunSummary) -> CampaignProgress:
    """The filter's counts: designs merged (produced), dropped as repeated sequences, selected."""
    changes = {
        "designs_produced": summary.designs_completed,
        "designs_dropped_as_duplicates": summary.designs_duplicates_dropped,
        "designs_selected": summary.designs_selected,
    }
    if summary.designs_completed is not None:
        changes["designs_completed"] = summary.designs_completed
    return progress.model_copy(update={k: v for k, v in changes.items() if v is not None})


def _filtered_message(progress: CampaignProgress, summary: contract.RunSummary, spec: BoltzGenCampaignSpec) -> str:
    message = (
        f"{summary.designs_selected} designs selected from {progress.designs_completed} "
        f"(shards merged: {len(summary.shards_merged)}/{spec.shard_count})"
    )
    if progress.designs_produced is not None and progress.designs_requested is not None:
        message += f"; {progress.designs_produced} designs produced of {progress.designs_requested} requested"
    if summary.designs_duplicates_dropped:
        message += (
            f"; {summary.designs_duplicates_dropped} dropped as repeated sequences (BoltzGen's filter keeps "
            "the first design of each sequence)"
        )
    budget = spec.effective_budget
    if summary.designs_selected is not None and summary.designs_selected < budget:
        message += f"; fewer than the budget of {budget}"
    return message


def _shards_text(progress: CampaignProgress) -> str:
    return f"{progress.shards_succeeded}/{progress.shards_total}"


def _condition_reason(status: BoltzGenCampaignStatus, type_: Cond) -> str | None:
    return next((c.reason for c in status.conditions if c.type == type_.value), None)

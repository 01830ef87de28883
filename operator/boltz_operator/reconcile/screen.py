"""BoltzScreen: from (the resource, its model cache, its prepare, shard and rank Jobs, the workers' summaries) to
children and status. No GPU before the CPU prepare succeeded; the shard count comes from prepare's summary (the
library is read by the worker: the operator has no credentials) and is kept in status.progress.shardsTotal.

Progress is bounded in writes: a pass writes only when a count changes, and the counts come from the shard Job's
completed and failed indexes (ligands done: the ligands of the finished shards), never from the results store.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from boltz_contract.screen import RANKED_CSV, RANKED_PARQUET
from boltz_operator.api.modelcache import Bundle
from boltz_operator.api.prediction import ChainMsaStatus, MsaSourceName
from boltz_operator.api.screen import (
    SCREEN_RESOURCE,
    BoltzScreen,
    BoltzScreenSpec,
    BoltzScreenStatus,
    RankedLigandStatus,
    ScreenEstimate,
    ScreenPhase,
    ScreenProgress,
    ScreenResults,
)
from boltz_operator.api.screen import ScreenConditionType as Cond
from boltz_operator.builders import prediction as prediction_builders
from boltz_operator.builders import screen as builders
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.builders.results import NoResultsStore, place_results
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile import prepare_step
from boltz_operator.reconcile.cache_gate import cache_condition, cache_not_ready, ready_claim, waiting_for_cache
from boltz_operator.reconcile.jobs import JobState, describe_failure, index_set, job_facts, shard_errors
from boltz_operator.reconcile.msa_gate import MsaGateView, Wait
from boltz_operator.reconcile.status import (
    Outcome,
    PassContext,
    failed_status,
    open_run,
    write_status,
)
from boltz_operator.render import InputFileRef, render_boltz_input, validate_prediction

log = logging.getLogger(__name__)
PLURAL = SCREEN_RESOURCE.plural
TERMINAL = (ScreenPhase.SUCCEEDED, ScreenPhase.FAILED)
ScreenPass = PassContext[BoltzScreenSpec, BoltzScreenStatus]


def reconcile_screen(
    body: dict,
    cache_body: dict | None,
    jobs: dict[str, dict | None],
    kube: KubeApi,
    config: OperatorConfig,
    now: datetime | None = None,
    *,
    msa: MsaGateView | None = None,
    in_flight: frozenset[str] = frozenset(),
) -> Outcome:
    """One pass. `jobs`: the prepare, shard and rank Jobs by step (builders.PREPARE, SHARDS, RANK; None: none)."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    meta = body["metadata"]
    ref = OwnerRef.of(builders.KIND, meta)
    generation = meta.get("generation")
    outcome = Outcome()
    screen = open_run(BoltzScreen, body, kube, PLURAL, ScreenPhase.FAILED, TERMINAL, now, outcome)
    if screen is None:
        return outcome
    status = screen.status
    ctx = ScreenPass(
        ref=ref, spec=screen.spec, status=status, generation=generation, now=now, kube=kube, config=config,
        outcome=outcome,
    )  # fmt: skip
    rank, shards, prepare = jobs.get(builders.RANK), jobs.get(builders.SHARDS), jobs.get(builders.PREPARE)
    # A pass that created the next Job and was cut off (the operator killed) before its status write left a Job the
    # status does not know of. Replay that pass first: it derives the same status from the same Jobs and summaries,
    # and its creates answer "already there".
    if shards is not None and (status.progress is None or not status.progress.shards_total):
        ctx.status = (
            _before_gpu(ctx, cache_body, prepare, msa)
            if prepare is not None
            else _fail(ctx, "PrepareSummaryLost", "the prepare Job (and with it the shard count) is gone")
        )
    if rank is not None and shards is not None and ctx.status.phase == ScreenPhase.SCREENING:
        ctx.status = _screening(ctx, shards)
    if ctx.status.phase in TERMINAL:
        return write_status(kube, PLURAL, body, ctx.status, outcome)
    status = ctx.status
    if rank is not None:
        new = _ranking(ctx, rank)
    elif builders.RANK in in_flight or (shards is None and builders.SHARDS in in_flight):
        outcome.phase, outcome.status = status.phase, status
        return outcome  # the watch has not delivered the Job this process created: creating it again earns a 409
    elif shards is not None:
        new = _screening(ctx, shards)
    elif prepare is None and builders.PREPARE in in_flight:
        outcome.phase, outcome.status = status.phase, status
        return outcome
    else:
        new = _before_gpu(ctx, cache_body, prepare, msa)
    return write_status(kube, PLURAL, body, new, outcome)


def _fail(ctx: ScreenPass, reason: str, message: str, status: BoltzScreenStatus | None = None) -> BoltzScreenStatus:
    ctx.outcome.events.append(("Warning", reason, message))
    return failed_status(status or ctx.status, ScreenPhase.FAILED, reason, message, ctx.generation, ctx.now)


def _inputs(ctx: ScreenPass) -> tuple[dict, list[InputFileRef], prepare_step.Placed] | BoltzScreenStatus:
    """(the target's Boltz input, the files of target and library, the placements) or a Failed status."""
    spec = ctx.spec
    target = builders.target_spec(spec)
    doc, files = render_boltz_input(target)
    errors = validate_prediction(target, doc)
    if errors:
        return _fail(ctx, "InvalidInput", "target: " + "; ".join(errors))
    try:
        placed = prepare_step.place(ctx, doc, spec.msa_server, spec.results)
    except NoResultsStore as err:
        return _fail(ctx, "NoResultsStore", str(err))
    library = builders.library_file_ref(spec)
    return doc, [*files, *([library] if library else [])], placed


def _before_gpu(
    ctx: ScreenPass, cache_body: dict | None, prepare: dict | None, msa: MsaGateView | None
) -> BoltzScreenStatus:
    spec, status, ref, config, generation, now = ctx.spec, ctx.status, ctx.ref, ctx.config, ctx.generation, ctx.now
    inputs = _inputs(ctx)
    if isinstance(inputs, BoltzScreenStatus):
        return inputs
    doc, files, placed = inputs
    results, request, store = placed.results, placed.request, placed.store
    waiting = cache_not_ready(spec.model_cache, cache_body, Bundle.BOLTZ2)
    if waiting:
        return waiting_for_cache(ctx, waiting, ScreenPhase.WAITING_FOR_MODEL_CACHE)
    claim = ready_claim(cache_body)
    conditions = cache_condition(status.conditions, spec.model_cache, None, generation, now)
    owner = prepare_step.owner_of(ref)
    if prepare is None:
        admission = prepare_step.admit(owner, placed, msa)
        if isinstance(admission, Wait):
            if status.message != admission.message:
                ctx.outcome.events.append(("Normal", admission.reason, admission.message))
            return _preparing(ctx, conditions, admission.reason, admission.message)
        prepare_run = builders.build_prepare_run(spec, files, results, request, store)
        shard_doc, msa_downloads = prediction_builders.with_stored_msas(doc, request, store)
        shard_run = builders.build_shard_run(spec, files, results, msa_downloads)
        ctx.kube.create(builders.build_configmap(ref, doc, shard_doc, prepare_run, shard_run))
        ctx.outcome.created_job = ctx.kube.create(
            builders.build_prepare_job(ref, spec, prepare_run, files, results, store, claim, config, admission.fetch)
        )
        ctx.outcome.created_step = builders.PREPARE
        name = builders.job_name(ref.name, builders.PREPARE)
        return _preparing(ctx, conditions, "Preparing", f"checking the target and reading the library (Job {name})")

    facts = job_facts(prepare)
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        if status.phase == ScreenPhase.PREPARING and status.message and status.message.startswith("checking"):
            return status
        name = facts.name
        return _preparing(ctx, conditions, "Preparing", f"checking the target and reading the library (Job {name})")
    summary, failure = prepare_step.finished_prepare(ctx, facts, owner, placed, msa)
    if failure is not None:
        reason, message = failure
        ctx.status = updated(status, {"conditions": conditions})
        return _fail(ctx, reason, f"prepare: {message} (no GPU was used)")
    if summary is None or summary.shards is None:
        return _fail(ctx, "PrepareSummaryLost", "prepare succeeded but its summary (the shard count) is gone")
    if summary.shards == 0:
        return _fail(ctx, "NoValidLigands", f"no ligand of the library can be screened ({summary.ligands_failed} "
                     "failed to parse); see the prepare Job's log")  # fmt: skip
    shards = summary.shards
    ctx.outcome.created_job = ctx.kube.create(
        builders.build_shard_job(ref, spec, shards, files, results, store, claim, config)
    )
    ctx.outcome.created_step = builders.SHARDS
    total, failed = summary.ligands_total or 0, summary.ligands_failed or 0
    progress = ScreenProgress(
        ligands_total=total, ligands_done=0, ligands_failed=failed, shards_total=shards, shards_succeeded=0,
        shards_failed=0,
    )  # fmt: skip
    estimate = _estimate(total - failed, shards, config)
    shard_job = builders.job_name(ref.name, builders.SHARDS)
    if ctx.outcome.created_job:
        ctx.outcome.events.append(("Normal", "ShardJobCreated", f"Job {shard_job}: {total - failed} ligands in "
                                   f"{shards} shards; estimate {estimate.gpu_hours} GPU-hours"))  # fmt: skip
    conditions = set_condition(
        conditions, Cond.PREPARED.value, True, "Prepared", f"{total} ligands read, {failed} failed to parse; "
        f"{shards} shards", generation, now,
    )  # fmt: skip
    return updated(
        status,
        {
            "phase": ScreenPhase.SCREENING,
            "message": f"waiting for GPUs: {shards} shards",
            "observed_generation": generation,
            "conditions": conditions,
            "progress": progress,
            "ligands": f"0/{total}",
            "estimate": estimate,
            "msa": [ChainMsaStatus(chain=m.chain, source=MsaSourceName(m.source)) for m in summary.msas] or None,
            "job_names": [builders.job_name(ref.name, builders.PREPARE), shard_job],
            "results": ScreenResults(uri=results.target.uri),
        },
    )


def _estimate(ligands: int, shards: int, config: OperatorConfig) -> ScreenEstimate:
    seconds = ligands * config.boltz_gpu_seconds_per_ligand + shards * config.boltz_gpu_seconds_per_shard
    return ScreenEstimate(
        gpu_hours=round(seconds / 3600, 2),
        basis=f"{config.boltz_gpu_seconds_per_ligand} GPU-s per ligand + {config.boltz_gpu_seconds_per_shard} GPU-s "
        "per shard (model load); defaults from published L4 figures (one complex 42 s, four in one boltz predict "
        "75 s): set workers.boltzGpuSecondsPerLigand and workers.boltzGpuSecondsPerShard from your own GPUs",
    )


def _preparing(ctx: ScreenPass, conditions: list, reason: str, message: str) -> BoltzScreenStatus:
    return updated(
        ctx.status,
        {
            "phase": ScreenPhase.PREPARING,
            "message": message,
            "observed_generation": ctx.generation,
            "conditions": set_condition(
                conditions, Cond.PREPARED.value, False, reason, message, ctx.generation, ctx.now
            ),  # fmt: skip
        },
    )


def _shard_sizes(progress: ScreenProgress, per_shard: int) -> list[int]:
    valid = (progress.ligands_total or 0) - (progress.ligands_failed or 0)
    shards = progress.shards_total or 0
    return [min(per_shard, valid - i * per_shard) for i in range(shards)]


def _screening(ctx: ScreenPass, job: dict) -> BoltzScreenStatus:
    spec, status, ref, config, generation, now = ctx.spec, ctx.status, ctx.ref, ctx.config, ctx.generation, ctx.now
    progress = status.progress or ScreenProgress()
    facts = job_facts(job)
    job_status = job.get("status") or {}
    done, failed = index_set(job_status.get("completedIndexes")), index_set(job_status.get("failedIndexes"))
    sizes = _shard_sizes(progress, spec.ligands_per_shard)
    ligands_done = sum(sizes[i] for i in done if i < len(sizes))
    progress = progress.model_copy(
        update={"shards_succeeded": len(done), "shards_failed": len(failed), "ligands_done": ligands_done}
    )
    update: dict[str, Any] = {
        "observed_generation": generation,
        "progress": progress,
        "ligands": f"{ligands_done}/{progress.ligands_total}",
    }
    shards = progress.shards_total or 0
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        message = f"{len(done)}/{shards} shards done" + (f", {len(failed)} failed" if failed else "")
        return updated(status, {**update, "phase": ScreenPhase.SCREENING, "message": message})
    needed = builders.min_successful_shards(spec, shards)
    if facts.state == JobState.FAILED and (facts.failure_reason != "FailedIndexes" or len(done) < needed):
        worker = ctx.kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
        if facts.failure_reason in ("FailedIndexes", "MaxFailedIndexesExceeded"):
            reason = "TooManyShardsFailed"
            errors = shard_errors(ctx.kube, ref.namespace, facts.name)
            message = (
                f"{len(failed)} of {shards} shards failed; {len(done)} succeeded, at least {needed} needed. "
                f"Shard errors: {errors or 'none recorded (pods gone?)'}"
            )
        else:
            reason, message = describe_failure(
                facts, worker.exit_code if worker else None, worker.summary if worker else None,
                spec.timeout_seconds, worker.reason if worker else None,
                spec.resources.memory or config.default_memory,
            )  # fmt: skip
        return _fail(ctx, reason, f"shards: {message}", updated(status, update))
    if facts.state == JobState.SUCCEEDED:
        done_message = f"all {shards} shards succeeded"
    else:
        errors = shard_errors(ctx.kube, ref.namespace, facts.name)
        done_message = f"{len(done)}/{shards} shards succeeded ({len(failed)} failed; at least {needed} needed)" + (
            f". Shard errors: {errors}" if errors else ""
        )
    results = place_results(spec.results, config.default_results, ref.namespace, ref.name, ref.uid)
    ctx.kube.create(builders.build_rank_configmap(ref, spec, shards, results))
    ctx.outcome.created_job = ctx.kube.create(builders.build_rank_job(ref, spec, results, config))
    ctx.outcome.created_step = builders.RANK
    conditions = set_condition(
        status.conditions, Cond.SHARDS_COMPLETE.value, True,
        "AllShardsSucceeded" if facts.state == JobState.SUCCEEDED else "PartialSuccess", done_message, generation, now,
    )  # fmt: skip
    return updated(
        status,
        {
            **update,
            "phase": ScreenPhase.RANKING,
            "message": f"{done_message}; ranking",
            "conditions": conditions,
            "job_names": [*status.job_names, builders.job_name(ref.name, builders.RANK)],
        },
    )


def _ranking(ctx: ScreenPass, job: dict) -> BoltzScreenStatus:
    spec, status, ref, generation, now = ctx.spec, ctx.status, ctx.ref, ctx.generation, ctx.now
    facts = job_facts(job)
    if facts.state in (JobState.QUEUED, JobState.PENDING, JobState.RUNNING):
        if status.phase == ScreenPhase.RANKING:
            return status
        return updated(status, {"phase": ScreenPhase.RANKING, "message": "ranking", "observed_generation": generation})
    worker = ctx.kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
    summary = worker.summary if worker else None
    if facts.state == JobState.FAILED:
        reason, message = prepare_step.cpu_step_failure(ctx, facts, worker)
        return _fail(ctx, reason, f"rank: {message}")
    progress = status.progress or ScreenProgress()
    top = [
        RankedLigandStatus(
            rank=row.rank,
            id=row.id,
            smiles=row.smiles,
            affinity_pred_value=row.affinity_pred_value,
            affinity_probability_binary=row.affinity_probability_binary,
            iptm=row.iptm,
            ligand_iptm=row.ligand_iptm,
            confidence_score=row.confidence_score,
        )  # fmt: skip
        for row in (summary.top_ligands if summary else [])
    ]
    if summary is not None:
        progress = progress.model_copy(
            update={
                "ligands_total": summary.ligands_total if summary.ligands_total is not None else progress.ligands_total,
                "ligands_done": summary.ligands_done if summary.ligands_done is not None else progress.ligands_done,
                "ligands_failed": summary.ligands_failed
                if summary.ligands_failed is not None
                else progress.ligands_failed,
            }
        )
    base = (status.results.uri if status.results else None) or (summary.results_uri if summary else None)
    best = (top[0].affinity_probability_binary if spec.affinity else top[0].ligand_iptm) if top else None
    message = (
        f"{progress.ligands_done} ligands screened, {progress.ligands_failed} failed"
        if summary
        else "ranked; the rank Job's summary was not found (pods gone?)"
    )
    conditions = set_condition(status.conditions, Cond.COMPLETE.value, True, "Succeeded", message, generation, now)
    return updated(
        status,
        {
            "phase": ScreenPhase.SUCCEEDED,
            "message": message,
            "observed_generation": generation,
            "progress": progress,
            "ligands": f"{progress.ligands_done}/{progress.ligands_total}",
            "best": best,
            "results": ScreenResults(
                uri=base,
                table=f"{base}/{RANKED_CSV}" if base else None,
                parquet=f"{base}/{RANKED_PARQUET}" if base else None,
                top_ligands=top,
                report=f"{base}/{summary.report}" if base and summary and summary.report else None,
            ),
            "completion_time": facts.completion_time or now,
            "conditions": conditions,
        },
    )

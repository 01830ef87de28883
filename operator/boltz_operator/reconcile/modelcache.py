"""BoltzModelCache: a PVC filled ONCE by a populate Job; Ready when the Job's summary lists the files.

A Ready cache whose generation has not changed is left alone: re-applying the same manifest downloads nothing.
A new generation runs a new populate Job, which verifies what is there and fetches only what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from boltz_operator.api import MODEL_CACHE_RESOURCE, BoltzModelCache, BoltzModelCacheStatus, ModelCachePhase
from boltz_operator.api.modelcache import CachedFile
from boltz_operator.api.modelcache import ModelCacheConditionType as Cond
from boltz_operator.builders import modelcache as builders
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile.jobs import JobState, describe_failure, job_facts
from boltz_operator.reconcile.status import Outcome, first_validation_error, write_status

PLURAL = MODEL_CACHE_RESOURCE.plural


def reconcile_model_cache(
    body: dict, job: dict | None, kube: KubeApi, config: OperatorConfig, now: datetime | None = None
) -> Outcome:
    now = now or datetime.now(UTC).replace(microsecond=0)
    meta = body["metadata"]
    generation = meta.get("generation", 1)
    ref = OwnerRef.of(builders.KIND, meta)
    outcome = Outcome()
    try:
        cache = BoltzModelCache.model_validate({"spec": body.get("spec") or {}, "status": body.get("status") or {}})
    except ValidationError as err:
        status = BoltzModelCacheStatus.model_validate(body.get("status") or {})
        return write_status(
            kube,
            PLURAL,
            body,
            _failed(status, "InvalidSpec", f"invalid spec: {first_validation_error(err)}", generation, now),
            outcome,
        )
    status, spec = cache.status, cache.spec
    if status.phase in (ModelCachePhase.READY, ModelCachePhase.FAILED) and status.observed_generation == generation:
        outcome.phase = status.phase
        return outcome

    claim = builders.claim_name(ref.name, spec)
    if job is None:
        if spec.storage.existing_claim and kube.read_pvc(ref.namespace, claim) is None:
            message = f"PVC '{claim}' (spec.storage.existingClaim) not found; create it or remove existingClaim"
            new = updated(
                status,
                {
                    "phase": ModelCachePhase.PENDING,
                    "message": message,
                    "claim_name": claim,
                    "observed_generation": generation,
                    "conditions": set_condition(
                        status.conditions, Cond.READY.value, False, "ClaimNotFound", message, generation, now
                    ),
                },
            )
            return write_status(kube, PLURAL, body, new, outcome)
        if not spec.storage.existing_claim:
            kube.create(builders.build_pvc(ref, spec))
        kube.create(builders.build_configmap(ref, builders.build_run(spec)))
        outcome.created_job = kube.create(builders.build_job(ref, spec, config))
        message = f"populating the volume (Job {builders.job_name(ref)})"
        new = updated(
            status,
            {
                "phase": ModelCachePhase.POPULATING,
                "message": message,
                "claim_name": claim,
                "observed_generation": generation,
                "conditions": set_condition(
                    status.conditions, Cond.READY.value, False, "Populating", message, generation, now
                ),
            },
        )
        return write_status(kube, PLURAL, body, new, outcome)

    facts = job_facts(job)
    if facts.state not in (JobState.SUCCEEDED, JobState.FAILED):
        message = f"populating the volume (Job {facts.name}: {facts.state.value})"
        new = updated(
            status,
            {
                "phase": ModelCachePhase.POPULATING,
                "message": message,
                "claim_name": claim,
                "observed_generation": generation,
            },
        )
        return write_status(kube, PLURAL, body, new, outcome)

    worker = kube.last_terminated_worker(ref.namespace, facts.name, WORKER_CONTAINER)
    summary = worker.summary if worker else None
    if facts.state == JobState.SUCCEEDED and summary is not None and summary.ok:
        files = [CachedFile(path=f.path, bytes=f.bytes, sha256=f.sha256) for f in summary.files]
        message = f"{len(files)} files, {summary.total_bytes} bytes"
        new = updated(
            status,
            {
                "phase": ModelCachePhase.READY,
                "message": message,
                "claim_name": claim,
                "files": files,
                "total_bytes": summary.total_bytes,
                "populate_duration_seconds": summary.duration_seconds,
                "populated_time": now,
                "observed_generation": generation,
                "conditions": set_condition(
                    status.conditions, Cond.READY.value, True, "Populated", message, generation, now
                ),
            },
        )
        outcome.events.append(("Normal", "Ready", f"model cache Ready: {message}"))
        return write_status(kube, PLURAL, body, new, outcome)

    if facts.state == JobState.SUCCEEDED:
        reason, message = (
            "NoSummary",
            f"populate Job {facts.name} succeeded without a readable summary: {worker.raw_message if worker else 'no pod'}",
        )
    else:
        reason, message = describe_failure(
            facts, worker.exit_code if worker else None, summary, spec.populate_job.active_deadline_seconds
        )
    outcome.events.append(("Warning", reason, message))
    return write_status(
        kube, PLURAL, body, _failed(updated(status, {"claim_name": claim}), reason, message, generation, now), outcome
    )


def _failed(
    status: BoltzModelCacheStatus, reason: str, message: str, generation: int, now: datetime
) -> BoltzModelCacheStatus:
    return updated(
        status,
        {
            "phase": ModelCachePhase.FAILED,
            "message": message,
            "observed_generation": generation,
            "conditions": set_condition(status.conditions, Cond.READY.value, False, reason, message, generation, now),
        },
    )

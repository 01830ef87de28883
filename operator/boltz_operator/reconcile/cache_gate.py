"""Whether a run may start: its BoltzModelCache exists, is Ready, and holds the bundle the run needs."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from boltz_operator.api import BoltzModelCache, Condition, ModelCachePhase
from boltz_operator.api.modelcache import Bundle
from boltz_operator.conditions import set_condition, updated
from boltz_operator.reconcile.status import PassContext, S

MODEL_CACHE_READY = "ModelCacheReady"  # the condition type every run kind reports its cache gate under


def cache_not_ready(cache_name: str, cache_body: dict | None, bundle: Bundle) -> tuple[str, str] | None:
    """None when the run can start; else (reason, message) saying what the user can do about it."""
    if cache_body is None:
        return "ModelCacheNotFound", (
            f"model cache '{cache_name}' not found in this namespace: create a BoltzModelCache "
            f"named '{cache_name}' (see examples/modelcache.yaml)"
        )
    cache = BoltzModelCache.model_validate(cache_body)
    if bundle not in cache.spec.bundles:
        return "ModelCacheLacksBundle", (
            f"model cache '{cache_name}' does not hold the {bundle.value} bundle: add "
            f"{bundle.value} to its spec.bundles; the run starts when the cache is Ready"
        )
    phase = cache.status.phase
    if phase == ModelCachePhase.READY and cache.status.claim_name:
        return None
    if phase == ModelCachePhase.FAILED:
        return "ModelCacheFailed", (
            f"model cache '{cache_name}' is Failed: {cache.status.message or 'see its status'}; "
            "the run starts when the cache is fixed and Ready"
        )
    return (
        "ModelCacheNotReady",
        f"model cache '{cache_name}' is {phase.value if phase else 'Pending'}; waiting until it is Ready",
    )


def ready_claim(cache_body: dict | None) -> str:
    """The PVC of a cache that cache_not_ready found Ready (a Ready cache always names its claim)."""
    claim = BoltzModelCache.model_validate(cache_body).status.claim_name
    if claim is None:
        raise ValueError("a Ready model cache without status.claimName")
    return claim


def cache_condition(
    conditions: list[Condition], cache_name: str, waiting: tuple[str, str] | None, generation: int | None, now: datetime
) -> list[Condition]:
    """`conditions` with ModelCacheReady set from cache_not_ready's answer: True when `waiting` is None, else False
    with its reason and message."""
    if waiting is None:
        return set_condition(
            conditions, MODEL_CACHE_READY, True, "Ready", f"model cache '{cache_name}' is Ready", generation, now
        )
    reason, message = waiting
    return set_condition(conditions, MODEL_CACHE_READY, False, reason, message, generation, now)


def waiting_for_cache(
    ctx: PassContext[Any, S], waiting: tuple[str, str], phase: Enum, extra: dict[str, Any] | None = None
) -> S:
    """The status of a run that waits for its model cache (cache_not_ready's answer `waiting`): `phase` (the kind's
    WaitingForModelCache), the message, ModelCacheReady False with why, plus the status fields in `extra`. An Event
    when the wait begins or its reason changes: Warning when only the user can end it (a Failed cache, a missing
    bundle), else Normal."""
    status, spec = ctx.status, ctx.spec
    reason, message = waiting
    previous = next((c.reason for c in status.conditions if c.type == MODEL_CACHE_READY), None)
    if status.phase != phase or previous != reason:
        user_must_act = reason in ("ModelCacheFailed", "ModelCacheLacksBundle")
        ctx.outcome.events.append(("Warning" if user_must_act else "Normal", reason, message))
    return updated(
        status,
        {
            **(extra or {}),
            "phase": phase,
            "message": message,
            "observed_generation": ctx.generation,
            "conditions": cache_condition(status.conditions, spec.model_cache, waiting, ctx.generation, ctx.now),
        },
    )

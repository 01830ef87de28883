"""Whether a run may start: its BoltzModelCache exists, is Ready, and holds the bundle the run needs."""

from __future__ import annotations

from boltz_operator.api import BoltzModelCache, ModelCachePhase
from boltz_operator.api.modelcache import Bundle


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

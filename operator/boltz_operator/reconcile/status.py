"""What every reconciler shares: its report of a pass, and the one status write per pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from pydantic import ValidationError

from boltz_operator.api.common import KubeModel
from boltz_operator.kube import Kube

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a pass did, for the handler to report (Events, metrics)."""

    phase: Enum | None = None
    status: KubeModel | None = None  # the status this pass computed
    created_job: bool = False
    created_step: str | None = None  # a campaign's: which of its Jobs (design, filter) this pass created
    status_written: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def write_status(kube: Kube, plural: str, body: dict, new_status: KubeModel, outcome: Outcome) -> Outcome:
    """Patch the status subresource, only when the computed status differs from the observed one."""
    outcome.phase, outcome.status = new_status.phase, new_status
    new = new_status.to_body()
    old = body.get("status") or {}
    if new != old:
        meta = body["metadata"]
        changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
        log.debug("%s %s/%s status changed: %s", plural, meta["namespace"], meta["name"],
                  {k: (old.get(k), new.get(k)) for k in changed})
        kube.patch_status(plural, meta["namespace"], meta["name"], new)
        outcome.status_written = True
    return outcome


def first_validation_error(err: ValidationError) -> str:
    """The first problem pydantic found, with its field path: what a user needs to fix the spec."""
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"

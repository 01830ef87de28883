"""What every reconciler shares: its report of a pass, and the one status write per pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from boltz_operator.api.common import KubeModel
from boltz_operator.kube import Kube


@dataclass
class Outcome:
    """What a pass did, for the handler to report (Events, metrics)."""

    phase: Enum | None = None
    created_job: bool = False
    status_written: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


def write_status(kube: Kube, plural: str, body: dict, new_status: KubeModel, outcome: Outcome) -> Outcome:
    """Patch the status subresource, only when the computed status differs from the observed one."""
    outcome.phase = new_status.phase
    new = new_status.to_body()
    if new != (body.get("status") or {}):
        meta = body["metadata"]
        kube.patch_status(plural, meta["namespace"], meta["name"], new)
        outcome.status_written = True
    return outcome

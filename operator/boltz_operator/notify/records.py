"""Which events a run owes its webhooks, kept in its status (status.notifications): pure functions.

A reconcile pass that changes the phase appends the event's record in the same status write (`with_event`), so
the event exists exactly when the phase does. The notifier then delivers what `pending` lists, and marks each
webhook delivered (or failed) in the record. Nothing else is kept anywhere: a restarted operator reads the same.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from boltz_operator.api.notify import MAX_NOTIFICATION_RECORDS, NotificationRecord, Notify, NotifyOn

TERMINAL_PHASES = ("Succeeded", "Failed")
EVENT_TYPE_PREFIX = "io.boltz-operator"
S = TypeVar("S")


def notify_of(body: dict) -> Notify | None:
    """The object's spec.notify, or None when it has none or it does not validate (the pass reports the spec)."""
    raw = (body.get("spec") or {}).get("notify")
    if not raw:
        return None
    try:
        return Notify.model_validate(raw)
    except ValidationError:
        return None


def kind_slug(kind: str) -> str:
    """BoltzPrediction -> prediction, BoltzGenCampaign -> campaign (the middle word of the event type)."""
    return re.sub(r"^Boltz(Gen)?", "", kind).lower()


def event_type(kind: str, phase: str) -> str:
    """e.g. io.boltz-operator.prediction.succeeded"""
    return f"{EVENT_TYPE_PREFIX}.{kind_slug(kind)}.{phase.lower()}"


def with_event(body: dict, old_phase: str | None, status: S, now: datetime) -> S:
    """`status` with the record of the event its phase change owes spec.notify appended (unchanged when the phase
    did not change, the run has no notify, or notify is Terminal and the phase is not).

    The id is the object's uid and the phase (terminal phases happen once), plus a count for a phase entered again
    (Pending after a preemption): deterministic, so a pass repeated after a crash makes the same record.
    """
    notify = notify_of(body)
    phase_enum = getattr(status, "phase", None)
    phase = phase_enum.value if phase_enum is not None else None
    if notify is None or phase is None or phase == old_phase or not hasattr(status, "notifications"):
        return status
    if notify.on == NotifyOn.TERMINAL and phase not in TERMINAL_PHASES:
        return status
    records: list[NotificationRecord] = list(status.notifications or [])
    uid, kind = body["metadata"]["uid"], body.get("kind", "")
    seen = sum(1 for r in records if r.phase == phase)
    event_id = f"{uid}.{phase.lower()}" + (f".{seen + 1}" if seen else "")
    if any(r.id == event_id for r in records):
        return status
    records.append(NotificationRecord(id=event_id, type=event_type(kind, phase), phase=phase, time=now))
    return status.model_copy(update={"notifications": _trimmed(records, len(notify.webhooks))})  # type: ignore[attr-defined]


def _trimmed(records: list[NotificationRecord], webhooks: int) -> list[NotificationRecord]:
    """At most MAX_NOTIFICATION_RECORDS: the oldest settled ones (every webhook delivered or failed) go first."""
    while len(records) > MAX_NOTIFICATION_RECORDS:
        settled = next((r for r in records if _settled(r, webhooks)), records[0])
        records.remove(settled)
    return records


def _settled(record: NotificationRecord, webhooks: int) -> bool:
    return len(set(record.delivered) | set(record.failed)) >= webhooks


def pending(status: dict[str, Any], notify: Notify | None) -> list[tuple[NotificationRecord, int]]:
    """(record, webhook index) for each webhook of `notify` that has neither acknowledged nor been given up on."""
    if notify is None:
        return []
    out = []
    for raw in status.get("notifications") or []:
        try:
            record = NotificationRecord.model_validate(raw)
        except ValidationError:
            continue
        done = set(record.delivered) | set(record.failed)
        out += [(record, i) for i in range(len(notify.webhooks)) if i not in done]
    return out


def mark(status: dict[str, Any], event_id: str, index: int, delivered: bool) -> list[dict[str, Any]] | None:
    """status.notifications (API spelling) with webhook `index` of event `event_id` marked delivered or failed;
    None when the record is gone or already marked (nothing to write)."""
    records = [dict(r) for r in status.get("notifications") or []]
    for record in records:
        if record.get("id") != event_id:
            continue
        field = "delivered" if delivered else "failed"
        if index in (record.get("delivered") or []) or index in (record.get("failed") or []):
            return None
        record[field] = sorted({*(record.get(field) or []), index})
        return records
    return None

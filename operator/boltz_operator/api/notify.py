"""`spec.notify` (webhooks told when a run finishes) and `status.notifications` (what was sent to whom), shared by
every run kind (BoltzPrediction, BoltzGenCampaign, and the kinds to come).

The record of each event lives in the status, written in the same status write as the phase it announces: an
operator killed at any moment finds on restart exactly which webhooks have not acknowledged which event, and sends
those again, with the same event id (delivery is at least once; receivers dedupe by id).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import Field

from boltz_operator.api.common import CONDITIONS_SCHEMA_EXTRA, KeyRef, KubeModel, StatusModel, Url

MAX_WEBHOOKS = 4
MAX_NOTIFICATION_RECORDS = 20  # the oldest settled records go first (status must stay small)


class NotifyOn(str, Enum):
    """Terminal: Succeeded and Failed only. EveryPhase: every phase change (Pending, Running, ...)."""

    TERMINAL = "Terminal"
    EVERY_PHASE = "EveryPhase"


class Webhook(KubeModel):
    """One receiver of CloudEvents 1.0 JSON (structured mode) by HTTP POST."""

    url: Url = Field(
        description="http(s) URL. Its host must be allowed by the operator's notifications.allowedHosts "
        "(nothing is, unless the operator's installer listed it)."
    )
    signing_secret_ref: KeyRef | None = Field(
        default=None,
        description="Secret (same namespace) and key holding the HMAC-SHA256 signing key; the request then carries "
        "X-Boltz-Signature: t=<unix time>,v1=<hex HMAC of '<t>.<body>'>. The Secret's name must be one the "
        "operator was allowed to read (notifications.signingSecretNames).",
    )


class Notify(KubeModel):
    """Webhooks to tell about this run's phase changes."""

    webhooks: list[Webhook] = Field(
        min_length=1, max_length=MAX_WEBHOOKS, description="Where to POST each event (at least once, retried)."
    )
    on: NotifyOn = Field(default=NotifyOn.TERMINAL, description=NotifyOn.__doc__)


NOTIFY_DESCRIPTION = (
    "Webhooks told (CloudEvents 1.0, signed if asked) when the run reaches Succeeded or Failed, or on every phase."
)


def notify_field() -> Notify | None:
    """The `notify` field of a run kind's spec (not immutable: webhooks may be added to a running run)."""
    return Field(default=None, description=NOTIFY_DESCRIPTION)


class NotificationRecord(StatusModel):
    """One event and its delivery to each webhook of spec.notify (by index)."""

    id: str = Field(max_length=253, description="The CloudEvent id: the same on every retry, for receivers to dedupe.")
    type: str = Field(max_length=253, description="The CloudEvent type, e.g. io.boltz-operator.prediction.succeeded.")
    phase: str = Field(max_length=64, description="The phase the event announces.")
    time: datetime = Field(description="When the run entered the phase.")
    delivered: list[int] = Field(default=[], description="Indexes of spec.notify.webhooks that acknowledged (2xx).")
    failed: list[int] = Field(default=[], description="Indexes given up on after the retries (see Events).")


def notifications_field() -> list[NotificationRecord] | None:
    """The `notifications` field of a run kind's status (a list map keyed by id; unset until the first event)."""
    return Field(
        default=None,
        json_schema_extra={**CONDITIONS_SCHEMA_EXTRA, "x-kubernetes-list-map-keys": ["id"]},
        description=f"Events for spec.notify and their delivery, newest last (at most {MAX_NOTIFICATION_RECORDS}).",
    )

"""What every reconciler shares: its report of a pass, and the one status write per pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError

from boltz_operator.api.common import KindStatus, KubeModel
from boltz_operator.builders.common import OwnerRef
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.notify.records import with_event

S = TypeVar("S", bound=KindStatus)
Spec = TypeVar("Spec", bound=KubeModel)
FAILED_CONDITION = "Failed"

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What a pass did, for the handler to report (Events, metrics)."""

    phase: Enum | None = None
    status: KubeModel | None = None  # the status this pass computed
    created_job: bool = False
    created_step: str | None = None  # which Job this pass created: predict, or a campaign's design or filter
    status_written: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


@dataclass
class PassContext(Generic[Spec, S]):
    """One pass over one object: what every step of its reconciler reads (the status as the pass found it) and the
    outcome the steps report into. A kind whose steps need more derives from it (reconcile/campaign.CampaignPass)."""

    ref: OwnerRef
    spec: Spec
    status: S
    generation: int | None
    now: datetime
    kube: KubeApi
    config: OperatorConfig
    outcome: Outcome


def write_status(kube: KubeApi, plural: str, body: dict, new_status: KindStatus, outcome: Outcome) -> Outcome:
    """Patch the status subresource, only when the computed status differs from the observed one.

    A phase change that spec.notify asks to be told about gets its event record in this same write
    (notify/records.py), so the event exists exactly when the phase does, whatever happens to the process next.
    """
    old = body.get("status") or {}
    new_status = with_event(body, old.get("phase"), new_status, datetime.now(UTC).replace(microsecond=0))
    outcome.phase, outcome.status = new_status.phase, new_status
    new = new_status.to_body()
    if new != old:
        meta = body["metadata"]
        changed = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
        log.debug(
            "%s %s/%s status changed: %s",
            plural,
            meta["namespace"],
            meta["name"],
            {k: (old.get(k), new.get(k)) for k in changed},
        )
        kube.patch_status(plural, meta["namespace"], meta["name"], new)
        outcome.status_written = True
    return outcome


R = TypeVar("R", bound="_Run")


class _Run(Protocol):
    """What open_run needs of a run's model (api BoltzPrediction, BoltzGenCampaign, BoltzScreen)."""

    @property
    def status(self) -> KindStatus: ...

    @classmethod
    def model_validate(cls: type[R], obj: Any) -> R: ...


def open_run(
    model: type[R],
    body: dict,
    kube: KubeApi,
    plural: str,
    failed_phase: Enum,
    terminal: tuple[Enum, ...],
    now: datetime,
    outcome: Outcome,
) -> R | None:
    """The run (a prediction, campaign or screen: spec and status as `model`) a pass goes on with, or None when the
    pass is over and its status written: a spec that does not validate ends `failed_phase` (reason InvalidSpec,
    pydantic's first error with its field path); a finished run (a phase in `terminal`) only has observedGeneration
    brought up, since its inputs are immutable and a later generation (a changed scheduling field) leaves the result
    as it is, even after its Jobs are garbage-collected."""
    generation = body["metadata"].get("generation")
    try:
        run = model.model_validate({"spec": body.get("spec") or {}, "status": body.get("status") or {}})
    except ValidationError as err:
        status_model = cast(type[BaseModel], model).model_fields["status"].annotation
        assert isinstance(status_model, type)  # pydantic resolved it: BoltzPredictionStatus and the like
        stored: KindStatus = stored_status(status_model, body)
        failed = failed_status(
            stored, failed_phase, "InvalidSpec", f"invalid spec: {first_validation_error(err)}", generation, now
        )
        write_status(kube, plural, body, failed, outcome)
        return None
    if run.status.phase in terminal:
        write_status(kube, plural, body, updated(run.status, {"observed_generation": generation}), outcome)
        return None
    return run


def first_validation_error(err: ValidationError) -> str:
    """The first problem pydantic found, with its field path: what a user needs to fix the spec."""
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def failed_status(status: S, failed_phase: Enum, reason: str, message: str, generation: int | None, now: datetime) -> S:
    """A run's terminal failure (prediction, campaign): phase Failed, a True Failed condition, completionTime.
    Already Failed (an invalid spec fails again on every pass): its time is kept, or each pass would write anew."""
    previous = getattr(status, "completion_time", None)  # the run kinds' (a model cache has none)
    done = previous if status.phase == failed_phase and previous else now
    return updated(
        status,
        {
            "phase": failed_phase,
            "message": message,
            "observed_generation": generation,
            "completion_time": done,
            "conditions": set_condition(status.conditions, FAILED_CONDITION, True, reason, message, generation, now),
        },
    )


def stored_status(model: type[S], body: dict) -> S:
    """The status on the object, or an empty one when even that does not validate (then the spec failed too)."""
    try:
        return model.model_validate(body.get("status") or {})
    except ValidationError:
        return model()

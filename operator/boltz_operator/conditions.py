"""metav1.Condition bookkeeping: lastTransitionTime moves only when the status does."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from boltz_operator.api.common import Condition, ConditionStatus

M = TypeVar("M", bound=BaseModel)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    new_status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    previous = next((c for c in conditions if c.type == type_), None)
    transition = previous.last_transition_time if previous and previous.status == new_status else now
    updated = Condition(
        type=type_,
        status=new_status,
        reason=reason,
        message=message,
        last_transition_time=transition,
        observed_generation=generation,
    )
    return [updated if c.type == type_ else c for c in conditions] if previous else [*conditions, updated]


def updated(model: M, changes: dict[str, Any]) -> M:
    """A copy of a status model with changes applied and validated (model_copy would skip validation)."""
    return type(model).model_validate({**dict(model), **changes})

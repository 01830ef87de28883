"""Waiting for a condition with a timeout: the only way tests wait (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


def wait_until(condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Call condition() until it returns something truthy, and return that; fail after `timeout` seconds.

    The failure names `what` and the last value seen (or the last exception), so a red test says why.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = condition()
            if last:
                return last
        except Exception as err:  # noqa: BLE001 - a condition that raises is "not yet"; kept for the message
            last = err
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)

"""What the operator remembers between passes, in one place (it used to be spread over kopf's `memo`).

Passes run in a thread pool: a Job event and its parent's own event can arrive at once. Per object the operator
keeps a lock (one pass at a time), the status it last wrote (indices lag behind its own writes), the steps whose
Job it created and the watch has not delivered yet (so it never creates one twice), and per Job the failed-pod
count it has seen (to count retries once). All of it is forgotten with the object.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from boltz_operator.api import CAMPAIGN_RESOURCE, PREDICTION_RESOURCE
from boltz_operator.reconcile.indices import FINISHED_PHASES
from boltz_operator.reconcile.status import Outcome

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)
RUN_KINDS = frozenset({PREDICTION_RESOURCE.kind, CAMPAIGN_RESOURCE.kind})
_FINISHED: dict = {}  # in place of a finished run's status that a body has shown (compared by identity)


def _key(kind: str, meta: Mapping) -> tuple[str, str, str, str]:
    return kind, meta["namespace"], meta["name"], meta["uid"]


class Bookkeeping:
    """Per-object memory of one operator process; safe to use from the handlers' threads."""

    def __init__(self, runs: frozenset[str] = RUN_KINDS) -> None:
        self._runs = runs  # the kinds whose Succeeded and Failed are final (a model cache's Failed is not)
        self._locks: dict[ObjectKey, threading.Lock] = {}
        self._written: dict[tuple[str, str, str, str], dict] = {}  # or _FINISHED
        self._in_flight: dict[tuple[str, str, str, str], set[str]] = {}
        self._failed_pods_seen: dict[tuple[str, str], int] = {}

    def lock(self, kind: str, namespace: str, name: str) -> threading.Lock:
        """The object's lock (dict.setdefault is atomic: two threads get the same lock)."""
        return self._locks.setdefault((kind, namespace, name), threading.Lock())

    def with_own_writes(self, kind: str, body: dict) -> dict | None:
        """`body` with the status this operator last wrote. The operator is the only writer of status, so that is what
        the API holds, while indices (and so passes started by a child's event) can lag several writes behind:
        without this, a pass would recompute from an old status and write the same change again.

        A finished run's status (Succeeded, Failed), once a body shows it, is replaced by a marker: kept whole, it
        would hold a status for every finished run. A body that is not finished is then older than what the API
        holds (a Job event's pass took it from the index before this object's lock): None, nothing to do."""
        key = _key(kind, body["metadata"])
        written = self._written.get(key)
        if written is None:
            return body
        observed = body.get("status") or {}
        if written is _FINISHED:
            return body if observed.get("phase") in FINISHED_PHASES else None
        if kind in self._runs and observed.get("phase") in FINISHED_PHASES and observed == written:
            self._written[key] = _FINISHED
            return body
        return {**body, "status": written}

    def remember_write(self, kind: str, body: dict, outcome: Outcome) -> None:
        if outcome.status_written and outcome.status is not None:
            self._written[_key(kind, body["metadata"])] = outcome.status.to_body()

    def remember_status_fields(self, kind: str, body: dict, fields: dict) -> None:
        """A write of some status fields made outside a pass (the notifier's delivery marks), onto `body`, the object
        as read under its lock: the next pass starts from it instead of an older status (unless the run is finished
        and marked so: then passes use what the watch delivers, which will show the write)."""
        key = _key(kind, body["metadata"])
        if self._written.get(key) is not _FINISHED:
            self._written[key] = {**(body.get("status") or {}), **fields}

    def steps_in_flight(self, kind: str, meta: Mapping, jobs: Mapping[str, dict | None]) -> frozenset[str]:
        """The steps whose Job this process created and `jobs` (what the index shows) lacks; a delivered one is
        forgotten."""
        created = self._in_flight.get(_key(kind, meta))
        if not created:
            return frozenset()
        created -= {step for step, job in jobs.items() if job is not None}
        if not created:
            self._in_flight.pop(_key(kind, meta), None)
        return frozenset(created)

    def remember_created(self, kind: str, meta: Mapping, outcome: Outcome) -> None:
        if outcome.created_job and outcome.created_step:
            self._in_flight.setdefault(_key(kind, meta), set()).add(outcome.created_step)

    def new_failed_pods(self, namespace: str, job_name: str, failed: int) -> int:
        """How many more failed pods the Job has than when last asked (0 the first time it has none)."""
        seen = self._failed_pods_seen.get((namespace, job_name), 0)
        if failed or seen:  # a Job without failed pods (most of them) takes no entry
            self._failed_pods_seen[(namespace, job_name)] = failed
        return max(0, failed - seen)

    def forget(self, kind: str, meta: Mapping) -> None:
        """The object is gone: drop everything kept for it."""
        self._written.pop(_key(kind, meta), None)
        self._in_flight.pop(_key(kind, meta), None)
        self._locks.pop((kind, meta["namespace"], meta["name"]), None)

    def forget_job(self, namespace: str, job_name: str) -> None:
        self._failed_pods_seen.pop((namespace, job_name), None)

    def sizes(self) -> dict[str, int]:
        """Entries held, by table (for tests and memory checks)."""
        return {
            "locks": len(self._locks),
            "written": len(self._written),
            "in_flight": len(self._in_flight),
            "failed_pods_seen": len(self._failed_pods_seen),
        }

"""One fake of the reconcilers' API (boltz_operator.kube.KubeApi) for unit tests: it records what a pass creates
and the status it writes, and answers the pod questions (the last finished worker, the failed shards) from what
the test gives it. Integration tests use the real Kube against the local control plane."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from boltz_operator.kube import KubeApi, TerminatedWorker


@dataclass
class StatusWrite:
    plural: str
    namespace: str
    name: str
    status: dict


@dataclass
class FakeKube:
    worker: TerminatedWorker | None = None  # last_terminated_worker's answer, for any Job
    failed: list[tuple[int, TerminatedWorker]] = field(default_factory=list)  # failed_workers' answer
    exists: bool = False  # create() answers False: the object is already there (a 409)
    created: list[Any] = field(default_factory=list)
    status_writes: list[StatusWrite] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    asked: list[tuple[str, str, str]] = field(default_factory=list)  # (call, namespace, job name) of pod questions

    def create(self, obj: Any) -> bool:
        self.created.append(obj)
        return not self.exists

    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None:
        self.status_writes.append(StatusWrite(plural, namespace, name, status))

    def post_event(self, body: dict, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def read_pvc(self, namespace: str, name: str) -> client.V1PersistentVolumeClaim | None:
        return None

    def last_terminated_worker(self, namespace: str, job_name: str, container: str) -> TerminatedWorker | None:
        self.asked.append(("last_terminated_worker", namespace, job_name))
        return self.worker

    def failed_workers(self, namespace: str, job_name: str, container: str) -> list[tuple[int, TerminatedWorker]]:
        self.asked.append(("failed_workers", namespace, job_name))
        return self.failed

    @property
    def status_patches(self) -> list[dict]:
        """The statuses written, in order."""
        return [w.status for w in self.status_writes]

    @property
    def jobs(self) -> list[client.V1Job]:
        return [o for o in self.created if isinstance(o, client.V1Job)]


def _satisfies(kube: FakeKube) -> KubeApi:  # the fake keeps the real Kube's shape (mypy-checkable)
    return kube

"""The few API calls the reconcilers make. Sync client: called from kopf's sync handlers (a thread pool),
never on the event loop."""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from boltz_contract import RunSummary, shorten_middle
from boltz_operator.api import GROUP, VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TerminatedWorker:
    """What the Job's last finished pod says: its exit code and the worker's summary, when it wrote one."""

    exit_code: int
    summary: RunSummary | None
    raw_message: str
    reason: str | None


class KubeApi(Protocol):
    """The API calls a reconciler may make: what `Kube` does against a cluster, and tests/support/fake_kube.FakeKube
    does without one. Reconcilers and passes are typed against this, never against `Kube`."""

    def create(self, obj: Any) -> bool: ...

    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None: ...

    def post_event(self, body: dict, type_: str, reason: str, message: str) -> None: ...

    def read_pvc(self, namespace: str, name: str) -> client.V1PersistentVolumeClaim | None: ...

    def last_terminated_worker(self, namespace: str, job_name: str, container: str) -> TerminatedWorker | None: ...

    def failed_workers(self, namespace: str, job_name: str, container: str) -> list[tuple[int, TerminatedWorker]]: ...


class Kube:
    """KubeApi on the sync kubernetes client."""

    def __init__(self, api_client: client.ApiClient):
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def create(self, obj: Any) -> bool:
        """Create obj; False when it already exists (a previous pass, or a previous operator, made it)."""
        namespace = obj.metadata.namespace
        creators = {
            client.V1Job: self.batch.create_namespaced_job,
            client.V1ConfigMap: self.core.create_namespaced_config_map,
            client.V1PersistentVolumeClaim: self.core.create_namespaced_persistent_volume_claim,
        }
        try:
            # The response is not needed: skip turning it back into typed objects (costly in CPU, per create).
            creators[type(obj)](namespace, obj, _preload_content=False).read()
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status}, _preload_content=False
        ).read()

    def post_event(self, body, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the resource (what `kubectl describe` shows)."""
        meta = body["metadata"]
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"{meta['name']}.{uuid.uuid4().hex[:12]}", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=body["apiVersion"],
                kind=body["kind"],
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta["uid"],
            ),
            type=type_,
            reason=reason,
            message=shorten_middle(message, 1024),
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="boltz-operator"),
            reporting_component="boltz-operator",
            reporting_instance="boltz-operator",
        )
        try:
            self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as err:  # an Event is worth a log line, never a failed pass
            log.warning("could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], err.reason)

    def get_object(self, plural: str, namespace: str, name: str) -> dict | None:
        """One of the operator's own resources as the API holds it now; None when it is gone."""
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes:
        """The value of `key` in Secret `name` (the chart lets the operator `get` only the Secrets it names).
        Raises ApiException (403: not a name it may read; 404), KeyError (no such key)."""
        data = self.core.read_namespaced_secret(name, namespace).data or {}
        if key not in data:
            raise KeyError(f"the Secret has no key {key}")
        return base64.b64decode(data[key])

    def read_pvc(self, namespace: str, name: str) -> client.V1PersistentVolumeClaim | None:
        try:
            return self.core.read_namespaced_persistent_volume_claim(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def last_terminated_worker(self, namespace: str, job_name: str, container: str) -> TerminatedWorker | None:
        """The most recently finished worker container of the Job's pods."""
        finished = [t for _, t in self._terminated(namespace, job_name, container)]
        if not finished:
            return None
        return _worker(max(finished, key=lambda t: (t.finished_at is not None, t.finished_at)))

    def failed_workers(self, namespace: str, job_name: str, container: str) -> list[tuple[int, TerminatedWorker]]:
        """(completion index, worker) of each failed pod of an Indexed Job, by index, latest attempt first."""
        failed = [(index, t) for index, t in self._terminated(namespace, job_name, container) if t.exit_code != 0]
        failed.sort(key=lambda item: (item[0], -(item[1].finished_at.timestamp() if item[1].finished_at else 0)))
        return [(index, _worker(t)) for index, t in failed]

    def _terminated(self, namespace: str, job_name: str, container: str) -> list[tuple[int, Any]]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}").items
        found = []
        for pod in pods:
            index = int((pod.metadata.annotations or {}).get("batch.kubernetes.io/job-completion-index", 0))
            for status in pod.status.container_statuses or []:
                if status.name == container and status.state and status.state.terminated:
                    found.append((index, status.state.terminated))
        return found


def _worker(terminated) -> TerminatedWorker:
    message = (terminated.message or "").strip()
    return TerminatedWorker(
        exit_code=terminated.exit_code, summary=parse_summary(message), raw_message=message, reason=terminated.reason
    )


def parse_summary(message: str) -> RunSummary | None:
    if not message.startswith("{"):
        return None  # FallbackToLogsOnError: the end of the log, not a summary
    try:
        return RunSummary.from_termination_message(message)
    except ValueError:
        log.warning("unparseable worker summary: %.200s", message)
        return None


def _satisfies(kube: Kube) -> KubeApi:  # mypy checks here that Kube is a KubeApi
    return kube

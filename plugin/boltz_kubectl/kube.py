"""The Kubernetes side of the plugin: the connection (kubectl's --kubeconfig, --context, --namespace rules) and the
few calls it makes, each turning an ApiException into a PluginError a user can read."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from boltz_operator.api import CAMPAIGN_RESOURCE, GROUP, PREDICTION_RESOURCE, SCREEN_RESOURCE, VERSION, ResourceKind

from .errors import ExitCode, PluginError
from .manifests import Submission

KINDS: dict[str, ResourceKind] = {r.kind: r for r in (PREDICTION_RESOURCE, CAMPAIGN_RESOURCE, SCREEN_RESOURCE)}
# --kind's values (status, logs, wait, results) -> kinds
KIND_FLAGS = {"prediction": "BoltzPrediction", "campaign": "BoltzGenCampaign", "screen": "BoltzScreen"}
DONE_PHASES = ("Succeeded", "Failed")


@dataclass
class Kube:
    api: Any  # kubernetes.client.ApiClient
    namespace: str

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
        """As kubectl: the kubeconfig from --kubeconfig, else $KUBECONFIG, else ~/.kube/config (or the in-cluster
        identity when there is none); the namespace from -n, else the context's, else `default`."""
        try:
            api = config.new_client_from_config(config_file=kubeconfig, context=context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next((c for c in contexts if c["name"] == context), active)
            default_ns = (active or {}).get("context", {}).get("namespace") or "default"
        except (ConfigException, FileNotFoundError) as e:
            if kubeconfig or context:
                raise PluginError(f"cannot load the kubeconfig: {e}") from e
            try:
                config.load_incluster_config()
            except ConfigException:
                raise PluginError(f"no kubeconfig found ({e}); give --kubeconfig or set KUBECONFIG") from e
            api = client.ApiClient()
            default_ns = "default"
        return cls(api=api, namespace=namespace or default_ns)

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    # ------------------------------------------------------------------------------------------ resources

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, KINDS[kind].plural, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise _api_error(f"get {kind} {name}", e) from e

    def find(self, name: str, kind: str | None = None) -> dict[str, Any]:
        """The prediction, campaign or screen called `name` (or only `kind`). Raises PluginError when there is none,
        and when there is more than one of that name and no `kind` (names are unique per kind only: guessing one
        would show, wait for or download the wrong run)."""
        found = [obj for candidate in ([kind] if kind else list(KINDS)) if (obj := self.get(candidate, name))]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(f"{KINDS[o['kind']].singular}/{name}" for o in found)
            flags = " or ".join(f"--kind {flag}" for o in found for flag, k in KIND_FLAGS.items() if k == o["kind"])
            raise PluginError(f'"{name}" names more than one run in namespace {self.namespace} ({names}): give {flags}')
        kinds = " or ".join(r.singular for r in ([KINDS[kind]] if kind else KINDS.values()))
        raise PluginError(f'no {kinds} "{name}" in namespace {self.namespace}')

    def existing(self, submission: Submission) -> list[str]:
        """What already exists of the objects `submission` would create, as `kind/name`, and any prediction,
        campaign or screen of its name: a name shared across kinds would make status, wait and logs need --kind."""
        found = []
        for kind in sorted(KINDS, key=lambda k: k != submission.kind):  # its own kind first
            if self.get(kind, submission.name) is not None:
                found.append(f"{KINDS[kind].singular}/{submission.name}")
        if submission.configmap is not None:
            cm_name = submission.configmap["metadata"]["name"]
            try:
                self.core.read_namespaced_config_map(cm_name, self.namespace)
                found.append(f"configmap/{cm_name}")
            except ApiException as e:
                if e.status != 404:
                    raise _api_error(f"get configmap {cm_name}", e) from e
        return found

    def create(self, submission: Submission, dry_run: bool = False) -> list[dict[str, Any]]:
        """Create the ConfigMap (if any), then the resource, then make the resource own the ConfigMap, so no
        resource ever names a missing ConfigMap and deleting the resource deletes its inputs. On failure what was
        created is deleted again. dry_run: the apiserver validates and answers, nothing is stored."""
        kind = KINDS[submission.kind]
        flag = {"dry_run": "All"} if dry_run else {}
        created: list[dict[str, Any]] = []
        cm = submission.configmap
        if cm is not None:
            try:
                created.append(self.api.sanitize_for_serialization(self.core.create_namespaced_config_map(
                    self.namespace, cm, **flag)))  # fmt: skip
            except ApiException as e:
                raise _api_error(f"create configmap {cm['metadata']['name']}", e) from e
        try:
            resource = self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, kind.plural, submission.resource, **flag
            )
        except ApiException as e:
            if cm is not None and not dry_run:
                self._delete_configmap(cm["metadata"]["name"])
            raise _api_error(f"create {kind.singular} {submission.name}", e) from e
        created.append(resource)
        if cm is not None and not dry_run:
            owner = {
                "apiVersion": resource["apiVersion"],
                "kind": resource["kind"],
                "name": resource["metadata"]["name"],
                "uid": resource["metadata"]["uid"],
            }
            try:
                patched = self.core.patch_namespaced_config_map(
                    cm["metadata"]["name"], self.namespace, {"metadata": {"ownerReferences": [owner]}}
                )
            except ApiException as e:
                raise _api_error(f"set the owner of configmap {cm['metadata']['name']}", e) from e
            created[0] = self.api.sanitize_for_serialization(patched)
        return created

    def _delete_configmap(self, name: str) -> None:
        try:
            self.core.delete_namespaced_config_map(name, self.namespace)
        except ApiException:
            pass  # best effort: the error that brought us here is the one to report

    def patch_spec(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, KINDS[kind].plural, name, {"spec": patch}
            )
        except ApiException as e:
            raise _api_error(f"patch {kind} {name}", e) from e

    # ------------------------------------------------------------------------------------------ following

    def events(self, obj: dict[str, Any]) -> list[Any]:
        """The Events about `obj`, oldest first."""
        meta = obj["metadata"]
        selector = f"involvedObject.name={meta['name']},involvedObject.kind={obj['kind']}"
        try:
            items = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        except ApiException as e:
            raise _api_error(f"list the events of {meta['name']}", e) from e
        return sorted(items, key=lambda ev: _event_time(ev) or 0)

    def pods(self, job_names: list[str], extra_selector: str = "") -> list[Any]:
        """Pods of these Jobs, newest first."""
        pods = []
        for job in job_names:
            selector = f"batch.kubernetes.io/job-name={job}" + (f",{extra_selector}" if extra_selector else "")
            try:
                pods += self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
            except ApiException as e:
                raise _api_error(f"list the pods of job {job}", e) from e
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp, reverse=True)

    def log(self, pod: str, container: str | None = None, tail: int | None = None) -> str:
        try:
            return self.core.read_namespaced_pod_log(pod, self.namespace, container=container, tail_lines=tail)
        except ApiException as e:
            raise _api_error(f"read the log of pod {pod}", e) from e

    def wait_done(self, kind: str, name: str, timeout: float | None, on_change: Callable[[dict], None]) -> dict:
        """Watch the resource until its phase is Succeeded or Failed; `on_change` sees each new phase. Raises
        PluginError (code TIMEOUT) after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        plural = KINDS[kind].plural
        last_phase = None
        while True:
            obj = self.find(name, kind)
            phase = (obj.get("status") or {}).get("phase")
            if phase != last_phase:
                on_change(obj)
                last_phase = phase
            if phase in DONE_PHASES:
                return obj
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise PluginError(
                    f"timed out waiting for {KINDS[kind].singular}/{name} (phase {phase})", code=ExitCode.TIMEOUT
                )
            # A watch from the version just read: no change is missed between the read and the watch.
            stream = watch.Watch().stream(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, plural,
                field_selector=f"metadata.name={name}", resource_version=obj["metadata"]["resourceVersion"],
                timeout_seconds=max(1, int(min(left, 60))) if left is not None else 60,
            )  # fmt: skip
            try:
                for _ in stream:
                    break  # any change: read it again at the top
            except ApiException as e:
                if e.status != 410:  # 410 Gone: the version is too old; reading again starts over
                    raise _api_error(f"watch {kind} {name}", e) from e


def _event_time(event: Any) -> Any:
    for attr in ("last_timestamp", "event_time", "first_timestamp"):
        value = getattr(event, attr, None)
        if value is not None:
            return value.timestamp()
    return None


def _api_error(action: str, e: ApiException) -> PluginError:
    """The apiserver's own message (Status.message) when it sent one: it names the field a CEL rule refused."""
    import json

    message = e.reason
    try:
        message = json.loads(e.body).get("message") or message
    except (TypeError, ValueError):
        pass
    return PluginError(f"cannot {action}: {message} ({e.status})")

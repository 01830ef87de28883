"""Cluster-side helpers shared by the benchmarks: the admin client, bench namespaces, the admission guard that lets
only the bench's own operator write in its namespace, and the waits around a run (earlier bench namespaces gone,
the model cache Ready, the operator done writing).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from support.bench_recording import GROUP, VERSION, AuditMark, Recorder, audit_lines_since, user_label
from support.cluster_fixtures import REPO, Cluster
from support.operator_fixtures import (
    OPERATOR_NAMESPACE,
    OPERATOR_SERVICE_ACCOUNT,
    OperatorProcess,
    operator_kubeconfig,
)
from support.wait import wait_until

OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
RESULTS_DIR = REPO / ".cluster" / "bench"
BENCH_LABEL = "boltz-operator.io/bench=true"  # on the bench's namespaces


def admin_client(cluster: Cluster) -> client.ApiClient:
    """The admin identity with a connection pool as large as the operator's (32), for 16 threads."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


# ---------------------------------------------------------------------------------------------- namespaces


def create_namespace(core: client.CoreV1Api, prefix: str, wait_for_default_sa: bool) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={BENCH_LABEL.split("=")[0]: "true"}))
    )
    if wait_for_default_sa:  # pods are refused until the ServiceAccount controller made `default`
        wait_until(
            lambda: core.read_namespaced_service_account("default", name),
            timeout=60,
            what=f"ServiceAccount default in {name}",
        )
    return name


def delete_namespace(core: client.CoreV1Api, name: str, wait: float = 0) -> float | None:
    """Delete; with wait > 0, wait until it is gone and return how long that took (None: not gone in time)."""
    started = time.monotonic()
    try:
        core.delete_namespace(name)
    except ApiException as err:
        if err.status not in (404, 409):  # 409: already terminating
            raise
    if not wait:
        return None

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as err:
            return err.status == 404
        return False

    try:
        wait_until(gone, timeout=wait, interval=0.5, what=f"namespace {name} gone")
    except AssertionError:
        return None
    return time.monotonic() - started


def wait_for_earlier_bench_namespaces(core: client.CoreV1Api) -> None:
    """A previous run's namespace, still being deleted, would weigh on this one: wait (at most 5 minutes, then warn)."""
    try:
        wait_until(
            lambda: not core.list_namespace(label_selector=BENCH_LABEL).items,
            timeout=300,
            interval=2,
            what="earlier bench namespaces to be deleted",
        )
    except AssertionError as err:
        print(f"[bench] WARNING: {err}")


# ---------------------------------------------------------------------------------------------- during a run


def wait_model_cache_ready(
    custom: client.CustomObjectsApi, namespace: str, name: str, operator: OperatorProcess
) -> None:
    """Only the bench's operator can make the cache Ready, so Ready also says it is serving the namespace."""
    wait_until(
        lambda: (
            (
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "boltzmodelcaches", name).get("status")
                or {}
            ).get("phase")
            == "Ready"
        ),
        timeout=300,
        interval=0.2,
        what=f"model cache Ready (operator log: {operator.log_path})",
    )


def cpu_pids(cluster: Cluster, operator: OperatorProcess, recorder: Recorder) -> dict[str, int]:
    """The processes a CpuMeter follows: the operator, this client, the watch recorder, the control plane's."""
    state = json.loads((cluster.state_dir / "state.json").read_text())
    return {
        "operator": operator.proc.pid,
        "bench client": os.getpid(),
        "watch recorder": recorder.process.pid,
        **{name: proc["pid"] for name, proc in state["processes"].items()},
    }


def wait_operator_quiet(cluster: Cluster, namespace: str, operator_jti: str | None) -> int:
    """Writes after the run's end belong to it too: wait until the bench's operator has not written in namespace for
    3 s (at most 2 minutes); the number of its writes seen meanwhile."""
    quiet = {"mark": AuditMark.now(cluster.audit_log), "last": time.monotonic(), "late": 0}

    def operator_quiet() -> bool:
        mark_now = AuditMark.now(cluster.audit_log)
        late = [
            e
            for e in audit_lines_since(quiet["mark"], f'"namespace":"{namespace}"')
            if user_label(e, OPERATOR_USER, operator_jti) == "operator (this bench)"
        ]
        quiet["mark"] = mark_now
        if late:
            quiet["late"] += len(late)
            quiet["last"] = time.monotonic()
        return time.monotonic() - quiet["last"] >= 3

    wait_until(operator_quiet, timeout=120, interval=1, what="the operator to stop writing")
    return quiet["late"]


# ---------------------------------------------------------------------------------------------- admission guard


class OnlyThisOperator:
    """A ValidatingAdmissionPolicy that lets, in the bench namespace, only this bench's operator token write as the
    operator's ServiceAccount.

    Other engineers' test sessions on this shared cluster run the operator with -A under the same ServiceAccount:
    without this guard they race the bench's operator for its predictions (the figures would count both). With it,
    their writes there are refused (403, counted apart as "foreign"); their reads and CPU still weigh on the run.
    Cluster-scoped but bound to the bench namespace only, and deleted afterwards.
    """

    def __init__(self, api: client.ApiClient, namespace: str, jti: str):
        self.admission = client.AdmissionregistrationV1Api(api)
        self.name = f"boltz-bench-{namespace}"
        self.namespace, self.jti = namespace, jti

    def __enter__(self) -> OnlyThisOperator:
        self.admission.create_validating_admission_policy(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": self.name},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "resourceRules": [
                            {
                                "apiGroups": ["*"],
                                "apiVersions": ["*"],
                                "resources": ["*/*"],
                                "operations": ["CREATE", "UPDATE", "DELETE"],
                            }
                        ]
                    },
                    "matchConditions": [
                        {
                            "name": "operator-service-account",
                            "expression": f"request.userInfo.username == '{OPERATOR_USER}'",
                        }
                    ],
                    "validations": [
                        {
                            "expression": "'authentication.kubernetes.io/credential-id' in request.userInfo.extra && "
                            f"request.userInfo.extra['authentication.kubernetes.io/credential-id'].exists(c, c == 'JTI={self.jti}')",
                            "message": "benchmark namespace: only the benchmark's own operator process writes here",
                            "reason": "Forbidden",
                        }
                    ],
                },
            }
        )
        self.admission.create_validating_admission_policy_binding(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": self.name},
                "spec": {
                    "policyName": self.name,
                    "validationActions": ["Deny"],
                    "matchResources": {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}}
                    },
                },
            }
        )
        return self

    def wait_effective(self, cluster: Cluster, operator_identity: Path, tmp_path: Path) -> None:
        """Until a write with another token of the ServiceAccount is refused (policies take effect asynchronously)."""
        other = operator_kubeconfig(cluster, tmp_path / "other-token-kubeconfig")
        core = client.CoreV1Api(config.new_client_from_config(config_file=str(other)))
        attempt = iter(range(10**6))

        def refused() -> bool:
            probe = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"bench-admission-probe-{next(attempt)}"))
            try:
                core.create_namespaced_config_map(self.namespace, probe)
            except ApiException as err:
                return err.status == 403 and "benchmark namespace" in (err.body or "")
            return False

        wait_until(refused, timeout=30, interval=0.5, what="the bench admission policy in effect")

    def __exit__(self, *exc) -> None:
        for delete in (
            self.admission.delete_validating_admission_policy_binding,
            self.admission.delete_validating_admission_policy,
        ):
            try:
                delete(self.name)
            except ApiException as err:
                if err.status != 404:
                    raise

"""Helpers for the chart on the real local control plane: `helm install/upgrade/uninstall` with the pinned helm
into fresh namespaces, and the operator run as a local process under a release's ServiceAccount (a TokenRequest
token) with the release's own Deployment environment. kwok plays the operator's pod: the images are fakes."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import yaml

from support.cluster_fixtures import REPO, Cluster
from support.wait import wait_until

CHART = REPO / "helm" / "boltz-operator"
RELEASE = "boltz-operator"  # so the release's ServiceAccount is named boltz-operator
FAKE_OPERATOR_IMAGE = {"repository": "registry.example/boltz-operator", "tag": "chart-test"}
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def operator_user(release_namespace: str) -> str:
    return f"system:serviceaccount:{release_namespace}:{RELEASE}"


class Namespaces:
    """Fresh namespaces, deleted (without waiting) on close."""

    def __init__(self, cluster: Cluster):
        self.cluster, self.created = cluster, []

    def create(self, stem: str, labels: dict[str, str] | None = None) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:6]}"
        self.cluster.kubectl("create", "namespace", name)
        if labels:
            self.cluster.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in labels.items()))
        self.created.append(name)
        wait_until(
            lambda: self.cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            timeout=30,
            what=f"ServiceAccount default in {name}",
        )
        return name

    def close(self) -> None:
        for name in self.created:
            self.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


class Helm:
    """The pinned helm against the local cluster. Releases still installed on close are uninstalled, so no
    ClusterRole or ClusterRoleBinding outlives a test."""

    def __init__(self, cluster: Cluster, workdir: Path):
        self.cluster, self.workdir, self.installed = cluster, workdir, set()
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(workdir / "cache"),
            "HELM_CONFIG_HOME": str(workdir / "config"),
            "HELM_DATA_HOME": str(workdir / "data"),
        }

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.cluster.bin_dir / "helm"), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def values_file(self, values: dict) -> str:
        path = self.workdir / f"values-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(values))
        return str(path)

    def install(self, namespace: str, values: dict, *extra: str) -> subprocess.CompletedProcess:
        # The CRDs are already in the cluster (other tests install them): helm finds them present and leaves them.
        result = self(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            namespace,
            "-f",
            self.values_file(values),
            "--wait",
            "--timeout",
            "180s",
            *extra,
        )
        self.installed.add(namespace)
        return result

    def upgrade(self, namespace: str, values: dict) -> subprocess.CompletedProcess:
        return self(
            "upgrade",
            RELEASE,
            str(CHART),
            "--namespace",
            namespace,
            "-f",
            self.values_file(values),
            "--wait",
            "--timeout",
            "180s",
        )

    def uninstall(self, namespace: str) -> subprocess.CompletedProcess:
        result = self("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "120s")
        self.installed.discard(namespace)
        return result

    def close(self) -> None:
        for namespace in list(self.installed):
            self("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "120s", check=False)


def can_i(
    cluster: Cluster, user: str, verb: str, resource: str, namespace: str | None, subresource: str | None = None
) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={user}"]
    args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args.append(f"--subresource={subresource}")
    result = cluster.kubectl(*args, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {result.stdout} {result.stderr}"
    return answer == "yes"


def deployment_env(cluster: Cluster, namespace: str) -> dict[str, str]:
    deployment = cluster.kubectl_json("get", "deployment", RELEASE, "-n", namespace)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container.get("env", [])}


@contextmanager
def fenced(cluster: Cluster, namespace: str, user: str):
    """Only `user` among operator identities may write the operator's objects in `namespace`.

    The shared cluster may run other operators watching all namespaces (the session operator of this or another
    test run: ServiceAccounts named boltz-operator). A ValidatingAdmissionPolicy refuses their creates and status
    writes here, so what happens in `namespace` is the work of `user` alone. Everyone else is untouched.
    """
    name = f"chart-test-fence-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": ["batch"], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["jobs"]},
                    {
                        "apiGroups": [""],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps", "persistentvolumeclaims"],
                    },
                    {
                        "apiGroups": ["boltz-operator.io"],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["boltzpredictions/status", "boltzmodelcaches/status"],
                    },
                ]
            },
            "validations": [
                {
                    "expression": f"!request.userInfo.username.endsWith(':{RELEASE}') || request.userInfo.username == '{user}'",
                    "message": f"chart test: only {user} operates in this namespace",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
        },
    }
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})
    )
    try:
        # In force once another operator identity is refused (a server-side dry run goes through admission).
        other = "system:serviceaccount:boltz-system:boltz-operator"
        wait_until(
            lambda: (
                "chart test: only"
                in cluster.kubectl(
                    "create",
                    "configmap",
                    "fence-probe",
                    "-n",
                    namespace,
                    "--dry-run=server",
                    f"--as={other}",
                    check=False,
                ).stderr
            ),
            timeout=30,
            what="the fence policy to be in force",
        )
        yield
    finally:
        cluster.kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            name,
            "--ignore-not-found",
            check=False,
        )


class AuditLog:
    """Write requests recorded by the apiserver from a point on (the audit policy logs writes at Metadata level)."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def entries(self, user: str, namespace: str | None = None) -> list[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            lines = f.read().splitlines()
        entries = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            ref = entry.get("objectRef") or {}
            if entry.get("user", {}).get("username") == user and (
                namespace is None or ref.get("namespace") == namespace
            ):
                entries.append(entry)
        return entries

"""The operator under test: the CRDs and the chart's RBAC installed on the real control plane, and
`boltz-operator run` as a process whose only identity is the chart's ServiceAccount (a token from the
TokenRequest API), so a missing RBAC rule fails the tests the way it would fail in a cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from support.cluster_fixtures import REPO, Cluster
from support.wait import wait_until

OPERATOR_NAMESPACE = "boltz-system"
OPERATOR_SERVICE_ACCOUNT = "boltz-operator"
WORKER_IMAGE = "registry.example/boltz-worker:test"
# Webhooks (spec.notify): tests receive them on loopback, so the test operator allows 127.0.0.1 (and non-public
# addresses, which loopback is), may read the signing Secret `webhook-signing` (the chart's RBAC is rendered with it),
# and retries quickly. Objects without spec.notify are not affected.
WEBHOOK_SIGNING_SECRET = "webhook-signing"
NOTIFY_ENV = {
    "BOLTZ_OPERATOR_NOTIFY_ALLOWED_HOSTS": '["127.0.0.1"]',
    "BOLTZ_OPERATOR_NOTIFY_ALLOW_PRIVATE_ADDRESSES": "true",
    "BOLTZ_OPERATOR_NOTIFY_SIGNING_SECRETS": json.dumps([WEBHOOK_SIGNING_SECRET]),
    "BOLTZ_OPERATOR_NOTIFY_MAX_ATTEMPTS": "200",
    "BOLTZ_OPERATOR_NOTIFY_BACKOFF_SECONDS": "0.2",
    "BOLTZ_OPERATOR_NOTIFY_BACKOFF_MAX_SECONDS": "1",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_crds_and_rbac(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        name = crd.stem.removeprefix("boltz-operator.io_") + ".boltz-operator.io"
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    rendered = subprocess.run(
        [
            str(cluster.bin_dir / "helm"),
            "template",
            "boltz-operator",
            str(REPO / "helm" / "boltz-operator"),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
            "--set-json",
            f"notifications.signingSecretNames={json.dumps([WEBHOOK_SIGNING_SECRET])}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cluster.kubectl("apply", "-f", "-", input=rendered)


def operator_kubeconfig(
    cluster: Cluster, path: Path, namespace: str = OPERATOR_NAMESPACE, service_account: str = OPERATOR_SERVICE_ACCOUNT
) -> Path:
    """A kubeconfig that authenticates as this ServiceAccount (by default the chart's) and nothing else."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=24h").stdout.strip()
    admin = json.loads(cluster.kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(json.dumps(config))
    return path


class OperatorProcess:
    """`boltz-operator run` as a process: all namespaces by default, or only `namespaces` (what a release with
    watchNamespaces runs, and what keeps a benchmark's operator out of other tests' namespaces)."""

    def __init__(
        self,
        cluster: Cluster,
        kubeconfig: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        namespaces: list[str] | None = None,
    ):
        self.cluster, self.kubeconfig, self.log_path, self.extra_env = cluster, kubeconfig, log_path, env or {}
        self.namespaces = namespaces or []
        self.proc: subprocess.Popen | None = None
        self.port = self.metrics_port = 0

    def start(self) -> OperatorProcess:
        self.port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BOLTZ_OPERATOR_WORKER_IMAGE": WORKER_IMAGE,
            "PYTHONUNBUFFERED": "1",
            **NOTIFY_ENV,
            **self.extra_env,
            "BOLTZ_OPERATOR_METRICS_PORT": str(self.metrics_port),  # last: two operators never share a port
        }
        scope = [arg for ns in self.namespaces for arg in ("--namespace", ns)] or ["-A"]
        verbose = ["-v"] if os.environ.get("BOLTZ_TEST_OPERATOR_VERBOSE") else []
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "boltz_operator.cli",
                    "run",
                    *scope,
                    *verbose,
                    f"--liveness=http://127.0.0.1:{self.port}/healthz",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, timeout=60, what=f"the operator's health endpoint (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
            return resp.status == 200

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies under it."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def operator_identity(cluster: Cluster, tmp_path_factory) -> Path:
    install_crds_and_rbac(cluster)
    return operator_kubeconfig(cluster, tmp_path_factory.mktemp("operator") / "kubeconfig")


@pytest.fixture(scope="session")
def operator(cluster: Cluster, operator_identity: Path, tmp_path_factory):
    """One operator for the session, watching all namespaces (tests each use a fresh one)."""
    process = OperatorProcess(
        cluster, operator_identity, tmp_path_factory.mktemp("operator-log") / "operator.log"
    ).start()
    yield process
    process.stop()

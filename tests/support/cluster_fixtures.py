"""pytest fixtures for the real local control plane (hack/cluster/cluster.py).

`cluster` (session): starts the cluster, or reuses a live one when .cluster/kubeconfig answers.
`namespace` (function): a fresh namespace per test, deleted afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
CLUSTER_TOOL = REPO / "hack" / "cluster" / "cluster.py"


@dataclass(frozen=True)
class Cluster:
    kubeconfig: Path
    bin_dir: Path
    server: str
    state_dir: Path

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def api_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "logs" / "audit.log"


def start_cluster() -> Cluster:
    result = subprocess.run(
        [sys.executable, str(CLUSTER_TOOL), "up"], stdout=sys.stderr, stderr=sys.stderr, timeout=3600
    )
    if result.returncode != 0:
        pytest.fail("the local control plane did not start: see the [cluster] messages above and .cluster/logs/")
    state_dir = Path(os.environ.get("BOLTZ_CLUSTER_DIR", REPO / ".cluster"))
    state = json.loads((state_dir / "state.json").read_text())
    return Cluster(
        kubeconfig=state_dir / "kubeconfig", bin_dir=Path(state["bin_dir"]), server=state["server"], state_dir=state_dir
    )


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return start_cluster()


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest):
    """A namespace named after the test, deleted (without waiting) when the test ends."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    # Pods are refused until the ServiceAccount controller has made the namespace's default account.
    wait_until(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
        what=f"ServiceAccount default in {name}",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)

"""What `make demo` prints for the user to try next works as printed, in a shell that knows nothing of this project
(no KUBECONFIG, a bare PATH that may even hold an older kubectl of its own)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
PLUGIN = Path(sys.executable).parent / "kubectl-boltz"


def load_demo():
    spec = importlib.util.spec_from_file_location("boltz_demo", REPO / "hack" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_shell(command: str, home: Path) -> subprocess.CompletedProcess:
    """bash with an empty environment but for a PATH whose first kubectl is an old one that always fails."""
    old = home / "old-bin"
    old.mkdir(exist_ok=True)
    (old / "kubectl").write_text("#!/bin/sh\necho 'an older kubectl' >&2\nexit 1\n")
    (old / "kubectl").chmod(0o755)
    env = {"PATH": f"{old}:/usr/bin:/bin", "HOME": str(home)}
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120)


def test_the_printed_commands_work_in_a_fresh_shell(cluster, operator_identity, namespace, tmp_path):
    # operator_identity: the CRDs and RBAC installed (no operator runs: the commands only read and create)
    demo = load_demo()
    example = REPO / "tests" / "fixtures" / "boltz_inputs" / "prot_no_msa.yaml"
    created = subprocess.run(
        [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, "predict", str(example), "--name", "shown"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    steps = demo.next_steps(cluster, namespace=namespace, prediction="shown")
    assert len(steps) == 4
    for command in steps:
        result = fresh_shell(command, tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert "an older kubectl" not in result.stderr

    # The other way the demo offers: the built kubectl and the plugin first on PATH, then plain `kubectl boltz`.
    setup = demo.shell_setup(cluster)
    version = fresh_shell(f"{setup}; kubectl version --client -o json", tmp_path)
    assert version.returncode == 0, version.stderr
    pinned = re.search(r"^KUBERNETES_VERSION=(\S+)", (REPO / "hack/cluster/versions.env").read_text(), re.M)[1]
    assert json.loads(version.stdout)["clientVersion"]["gitVersion"] == pinned  # the built one, not the older one
    status = fresh_shell(f"{setup}; kubectl boltz -n {namespace} status shown", tmp_path)
    assert status.returncode == 0, status.stderr
    assert "Name:      shown" in status.stdout

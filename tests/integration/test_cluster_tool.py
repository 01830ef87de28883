"""hack/cluster/cluster.py itself: idempotent `up`, a dead cluster cleaned up and replaced, `down` stopping
exactly the processes it started. Uses a private cluster directory beside the session's cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from support.cluster_fixtures import CLUSTER_TOOL
from support.wait import wait_until

pytestmark = pytest.mark.cluster


def tool(state_dir, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLUSTER_TOOL), command],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BOLTZ_CLUSTER_DIR": str(state_dir)},
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_is_idempotent_replaces_a_dead_cluster_and_down_stops_only_its_own(tmp_path, cluster):
    state_dir = tmp_path / "cluster"
    try:
        first = tool(state_dir, "up")
        assert first.returncode == 0, first.stderr
        pids = {name: p["pid"] for name, p in json.loads((state_dir / "state.json").read_text())["processes"].items()}
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

        again = tool(state_dir, "up")
        assert "is live" in again.stderr
        assert {n: p["pid"] for n, p in json.loads((state_dir / "state.json").read_text())["processes"].items()} == pids

        os.kill(pids["kube-apiserver"], signal.SIGKILL)
        wait_until(
            lambda: tool(state_dir, "status").returncode == 1, timeout=30, what="status to report the cluster dead"
        )
        replaced = tool(state_dir, "up")
        assert replaced.returncode == 0, replaced.stderr
        assert "not live; cleaning it up" in replaced.stderr
        assert not any(alive(pid) for pid in pids.values()), "the dead cluster's other processes are stopped"
        new_pids = {n: p["pid"] for n, p in json.loads((state_dir / "state.json").read_text())["processes"].items()}
        assert tool(state_dir, "status").returncode == 0

        session_pids = [
            p["pid"] for p in json.loads((cluster.state_dir / "state.json").read_text())["processes"].values()
        ]
        assert tool(state_dir, "down").returncode == 0
        wait_until(lambda: not any(alive(pid) for pid in new_pids.values()), timeout=30, what="its processes to exit")
        assert all(alive(pid) for pid in session_pids), "down must not touch another cluster's processes"
        assert not state_dir.exists()
    finally:
        tool(state_dir, "down")

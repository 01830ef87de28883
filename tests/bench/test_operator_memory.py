"""The operator's memory against the number of finished predictions, on the real local control plane.

One operator process watches a fresh namespace; predictions are created in steps (1,000, then up to 5,000, then up
to 10,000 by default), each step run to `Succeeded` by kwok, and after each step, once the operator's RSS has
settled, its VmRSS (and VmHWM, the peak) from /proc/<pid>/status is printed. Finished predictions and their Jobs
(kept 24 h by the Job TTL) stay in the cluster, so what grows per step is what the operator keeps per finished
prediction. Figures are printed and written to .cluster/bench/operator-memory-<time>.json, not asserted.

    BOLTZ_CLUSTER_DIR=/tmp/memcluster .venv/bin/pytest tests/bench/test_operator_memory.py -s -p no:cacheprovider
    BOLTZ_BENCH_MEMORY_STEPS=1000,2000 ...     # cumulative prediction counts at which RSS is read
    BOLTZ_BENCH_MEMORY_IN_FLIGHT=0 ...         # each step's predictions created at once (default: 200 unfinished at most)
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.test_prediction_throughput import timed_creates
from kubernetes import client

from support.bench_cluster import (
    RESULTS_DIR,
    OnlyThisOperator,
    admin_client,
    create_namespace,
    delete_namespace,
    wait_for_earlier_bench_namespaces,
    wait_model_cache_ready,
)
from support.bench_recording import GROUP, VERSION, token_jti
from support.cluster_fixtures import Cluster
from support.manifests import model_cache, played, predict_ok, prediction
from support.operator_fixtures import OperatorProcess

pytestmark = pytest.mark.bench

STEPS = [int(s) for s in os.environ.get("BOLTZ_BENCH_MEMORY_STEPS", "1000,5000,10000").split(",")]
THREADS = int(os.environ.get("BOLTZ_BENCH_THREADS", "16"))
TIMEOUT = float(os.environ.get("BOLTZ_BENCH_TIMEOUT", "3600"))  # seconds for each step to finish
PLURAL = "boltzpredictions"
# Unfinished predictions at most (0: each step's predictions all at once).
IN_FLIGHT = int(os.environ.get("BOLTZ_BENCH_MEMORY_IN_FLIGHT", "200"))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) for key in ("VmRSS", "VmHWM")}


def settled_rss(pid: int, window: int = 4, interval: float = 2.0, timeout: float = 90.0) -> dict[str, int]:
    """VmRSS once it has moved less than 1 MB over `window` samples (Python's gc and the allocator settle after a
    burst of work), or after `timeout`."""
    samples, deadline = [], time.monotonic() + timeout
    while True:
        samples.append(proc_status(pid))
        last = [s["VmRSS"] for s in samples[-window:]]
        if (len(last) == window and max(last) - min(last) < 1024) or time.monotonic() > deadline:
            return samples[-1]
        time.sleep(interval)


def succeeded_seen(operator: OperatorProcess, namespace: str) -> int:
    """Predictions in phase Succeeded, as the operator's own `boltz_resources` gauge counts them (cheaper than
    listing thousands of objects)."""
    with urllib.request.urlopen(operator.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    pattern = (
        rf'^boltz_resources{{kind="BoltzPrediction",namespace="{re.escape(namespace)}",phase="Succeeded"}} '
        r"([0-9.e+]+)$"
    )
    found = re.search(pattern, text, re.M)
    return int(float(found.group(1))) if found else 0


def test_operator_memory(cluster: Cluster, operator_identity: Path, tmp_path: Path):
    api = admin_client(cluster)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    wait_for_earlier_bench_namespaces(core)

    namespace = create_namespace(core, "bench-mem", wait_for_default_sa=True)
    width = max(5, len(str(STEPS[-1] - 1)))
    operator = OperatorProcess(
        cluster, operator_identity, RESULTS_DIR / f"operator-memory-{stamp}.log", namespaces=[namespace]
    )
    guard = OnlyThisOperator(api, namespace, token_jti(operator_identity))
    rows: list[dict] = []
    try:
        with guard:
            guard.wait_effective(cluster, operator_identity, tmp_path)
            operator.start()
            pid = operator.proc.pid
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "boltzmodelcaches", model_cache())
            wait_model_cache_ready(custom, namespace, "default", operator)
            rows.append({"finished": 0, "seconds": 0.0, **settled_rss(pid)})
            print(f"\n[bench] operator pid {pid}, model cache Ready: VmRSS {rows[0]['VmRSS'] / 1024:.1f} MB")
            done = 0
            for target in STEPS:
                names = [f"p{i:0{width}d}" for i in range(done, target)]
                t0 = time.monotonic()
                deadline, next_report, created = t0 + TIMEOUT, 0.0, 0
                while (seen := succeeded_seen(operator, namespace)) < target:
                    assert time.monotonic() < deadline, (
                        f"{seen}/{target} Succeeded after {TIMEOUT:.0f} s (log: {operator.log_path})"
                    )
                    assert operator.proc.poll() is None, f"the operator exited:\n{operator.log_tail()}"
                    # At most IN_FLIGHT unfinished at a time (as GPUs bound a real cluster's): what stays is then
                    # what the operator keeps of finished work, not the high-water mark of a burst.
                    unfinished = done + created - seen
                    room = len(names) - created if not IN_FLIGHT else min(len(names) - created, IN_FLIGHT - unfinished)
                    if room > 0:
                        batch, created = names[created : created + room], created + room
                        timed_creates(
                            batch,
                            lambda n: custom.create_namespaced_custom_object(
                                GROUP,
                                VERSION,
                                namespace,
                                PLURAL,
                                prediction(n, pod_metadata=played(predict_ok(f"s3://results/boltz/{namespace}/{n}"))),
                            ),
                            THREADS,
                        )
                        continue
                    if time.monotonic() >= next_report:
                        print(
                            f"[bench] {time.monotonic() - t0:6.1f} s: {seen}/{target} Succeeded, "
                            f"VmRSS {proc_status(pid)['VmRSS'] / 1024:.1f} MB"
                        )
                        next_report = time.monotonic() + 30
                    time.sleep(1)
                seconds = time.monotonic() - t0
                rss = settled_rss(pid)
                rows.append({"finished": target, "seconds": round(seconds, 1), **rss})
                done = target
                print(
                    f"[bench] {target} Succeeded ({len(names)} in {seconds:.0f} s): VmRSS {rss['VmRSS'] / 1024:.1f} MB, "
                    f"peak (VmHWM) {rss['VmHWM'] / 1024:.1f} MB"
                )
            operator.stop()
    finally:
        operator.stop()
        delete_namespace(core, namespace)

    base = rows[0]["VmRSS"]
    print("\n[bench] operator memory against finished predictions")
    print(f"{'finished':>9} {'VmRSS MB':>9} {'peak MB':>8} {'KB/pred. over the start':>24} {'step s':>7}")
    for row in rows:
        per = f"{(row['VmRSS'] - base) / row['finished']:.1f}" if row["finished"] else "-"
        print(
            f"{row['finished']:>9} {row['VmRSS'] / 1024:>9.1f} {row['VmHWM'] / 1024:>8.1f} {per:>24} {row['seconds']:>7}"
        )
    record = RESULTS_DIR / f"operator-memory-{stamp}.json"
    record.write_text(
        json.dumps({"namespace": namespace, "threads": THREADS, "in_flight": IN_FLIGHT, "rows": rows}, indent=2)
    )
    print(f"[bench] written to {record}")

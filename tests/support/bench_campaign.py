"""Measuring tools for the campaign benchmark: a watch recorder of pods, Jobs and BoltzGenCampaigns (a
bench_recording.Recorder, in a process of its own), extra fake GPU nodes for kwok, and the figures of one campaign's run.

Times are time.monotonic() in both processes (system-wide on Linux); API timestamps (1 s resolution) are read too,
and printed beside them, but the ratios use the watch's times.
"""

from __future__ import annotations

import math
from pathlib import Path

from support.bench_recording import GROUP, VERSION, Recorder, WatchLog

CAMPAIGNS = "boltzgencampaigns"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


# ---------------------------------------------------------------------------------------------- watch recorder


def _record(kubeconfig: str, namespace: str, out_path: str) -> None:
    """Child process: watch pods, Jobs and campaigns in namespace (bench_recording.WatchLog's lines).

    {"k": "pod"|"job"|"campaign", "n": name, "e": event, "j": job name (pods), "i": index (pods)}
    pod events: added, scheduled, Running, Succeeded, Failed; job events: added, successcriteriamet,
    complete, failed; campaign events: its status.phase values.
    """
    from kubernetes import client

    log = WatchLog(kubeconfig, out_path)

    def on_pod(obj: dict, via: str) -> None:
        meta = obj["metadata"]
        extra = {
            "j": (meta.get("labels") or {}).get(JOB_NAME_LABEL),
            "i": (meta.get("annotations") or {}).get(INDEX_ANNOTATION),
        }
        log.emit("pod", meta["name"], "added", **extra)
        if (obj.get("spec") or {}).get("nodeName"):
            log.emit("pod", meta["name"], "scheduled", **extra)
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Running", "Succeeded", "Failed"):
            log.emit("pod", meta["name"], phase, **extra)

    def on_job(obj: dict, via: str) -> None:
        name = obj["metadata"]["name"]
        log.emit("job", name, "added")
        for cond in (obj.get("status") or {}).get("conditions") or []:
            # SuccessCriteriaMet comes first (the outcome is settled; the operator moves on), Complete once the Job
            # controller has counted every pod (its next sync, >= 1 s later).
            if cond.get("status") == "True" and cond.get("type") in ("SuccessCriteriaMet", "Complete", "Failed"):
                log.emit("job", name, cond["type"].lower())

    def on_campaign(obj: dict, via: str) -> None:
        status = obj.get("status") or {}
        log.emit("campaign", obj["metadata"]["name"], status.get("phase") or "None")

    core, batch, custom = client.CoreV1Api(log.api()), client.BatchV1Api(log.api()), client.CustomObjectsApi(log.api())
    log.run(
        [
            ("pod", lambda **kw: core.list_namespaced_pod(namespace, **kw), on_pod),
            ("job", lambda **kw: batch.list_namespaced_job(namespace, **kw), on_job),
            (
                "campaign",
                lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, CAMPAIGNS, **kw),
                on_campaign,
            ),
        ]
    )


class CampaignRecorder(Recorder):
    """Pods, Jobs and campaigns of the campaign bench: first sightings, and each pod's Job and completion index."""

    KINDS = {"pod", "job", "campaign"}

    def __init__(self, kubeconfig: Path, namespace: str, out_path: Path):
        super().__init__(_record, kubeconfig, namespace, out_path)
        self.pods: dict[str, tuple[str | None, str | None]] = {}  # pod name -> (job name, completion index)

    def on_record(self, rec: dict) -> None:
        super().on_record(rec)
        if rec["k"] == "pod":
            self.pods.setdefault(rec["n"], (rec.get("j"), rec.get("i")))

    def pods_of(self, job: str) -> list[str]:
        return sorted(name for name, (job_name, _) in self.pods.items() if job_name == job)

    def pod_times(self, job: str, event: str) -> dict[str, float]:
        return self.times("pod", event, self.pods_of(job))


# ---------------------------------------------------------------------------------------------- fake GPU nodes

BENCH_NODE_LABEL = "boltz-operator.io/bench-node"
BENCH_TAINT = "boltz-operator.io/bench"
GPUS_PER_NODE = 8


def bench_gpu_node(name: str) -> dict:
    """A fake 8-GPU node like hack/cluster/manifests/nodes.yaml's, which kwok plays (it manages the nodes annotated
    kwok.x-k8s.io/node=fake), plus a label the bench's campaigns select and a taint only they tolerate: other
    tests' pods on a shared cluster never land on it, and the bench's pods land nowhere else."""
    resources = {
        "cpu": "64",
        "memory": "512Gi",
        "pods": "110",
        "ephemeral-storage": "1Ti",
        "nvidia.com/gpu": str(GPUS_PER_NODE),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "nvidia.com/gpu.count": str(GPUS_PER_NODE),
                BENCH_NODE_LABEL: "true",
            },
        },
        "spec": {
            "taints": [
                {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                {"key": BENCH_TAINT, "value": "true", "effect": "NoSchedule"},
            ]
        },
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "nodeInfo": {"kubeletVersion": "fake", "architecture": "amd64", "operatingSystem": "linux"},
        },
    }


def node_schedulable(node) -> bool:
    """Ready (kwok's node-initialize stage) and without the not-ready taint admission put on it at creation (the
    node lifecycle controller lifts it once the node is Ready)."""
    ready = any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
    return ready and not any(t.key.startswith("node.kubernetes.io/") for t in (node.spec.taints or []))


# ---------------------------------------------------------------------------------------------- figures


def slot_refill_gaps(succeeded: list[float], running: list[float], parallelism: int) -> list[float]:
    """How long a GPU slot stays idle between shards: the k-th pod to start running (k > parallelism) took the slot
    the (k - parallelism)-th finished pod freed; gap = its Running seen - that Succeeded seen."""
    done, started = sorted(succeeded), sorted(running)
    return [started[k] - done[k - parallelism] for k in range(parallelism, len(started)) if k - parallelism < len(done)]


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least squares y = a + b x: (a, b); None for fewer than two distinct x."""
    if len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def waves(shards: int, parallelism: int) -> int:
    return math.ceil(shards / parallelism)

"""Measuring tools for the campaign benchmark: a watch recorder of pods, Jobs and BoltzGenCampaigns (in a process of
its own, like benchlib.WatchRecorder), extra fake GPU nodes for kwok, and the figures of one campaign's run.

Times are time.monotonic() in both processes (system-wide on Linux); API timestamps (1 s resolution) are read too,
and printed beside them, but the ratios use the watch's times.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import threading
import time
from pathlib import Path

from bench.benchlib import GROUP, VERSION

CAMPAIGNS = "boltzgencampaigns"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


# ---------------------------------------------------------------------------------------------- watch recorder


def _record(kubeconfig: str, namespace: str, out_path: str) -> None:
    """Child process: watch pods, Jobs and campaigns in namespace; one JSON line per first sighting of an event.

    {"t": monotonic, "k": "pod"|"job"|"campaign", "n": name, "e": event, "j": job name (pods), "i": index (pods)}
    pod events: added, scheduled, Running, Succeeded, Failed; job events: added, successcriteriamet,
    complete, failed; campaign events: its status.phase values. {"k": "ready", "n": kind} once a kind's first list is done.
    """
    from kubernetes import client, config, watch

    out = open(out_path, "a", buffering=1)
    lock = threading.Lock()
    seen: set[tuple[str, str, str]] = set()

    def emit(kind: str, name: str, event: str, **extra) -> None:
        with lock:
            if (kind, name, event) in seen:
                return
            seen.add((kind, name, event))
            out.write(json.dumps({"t": time.monotonic(), "k": kind, "n": name, "e": event, **extra}) + "\n")

    def on_pod(obj: dict) -> None:
        meta = obj["metadata"]
        extra = {"j": (meta.get("labels") or {}).get(JOB_NAME_LABEL),
                 "i": (meta.get("annotations") or {}).get(INDEX_ANNOTATION)}
        emit("pod", meta["name"], "added", **extra)
        if (obj.get("spec") or {}).get("nodeName"):
            emit("pod", meta["name"], "scheduled", **extra)
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Running", "Succeeded", "Failed"):
            emit("pod", meta["name"], phase, **extra)

    def on_job(obj: dict) -> None:
        name = obj["metadata"]["name"]
        emit("job", name, "added")
        for cond in (obj.get("status") or {}).get("conditions") or []:
            # SuccessCriteriaMet comes first (the outcome is settled; the operator moves on), Complete once the Job
            # controller has counted every pod (its next sync, >= 1 s later).
            if cond.get("status") == "True" and cond.get("type") in ("SuccessCriteriaMet", "Complete", "Failed"):
                emit("job", name, cond["type"].lower())

    def on_campaign(obj: dict) -> None:
        status = obj.get("status") or {}
        emit("campaign", obj["metadata"]["name"], status.get("phase") or "None")

    def run(kind: str, lister, handler) -> None:
        ready = False
        while True:
            try:
                resp = lister(_preload_content=False)
                body = json.loads(resp.data)
                for item in body.get("items") or []:
                    handler(item)
                rv = body["metadata"]["resourceVersion"]
                if not ready:
                    ready = True
                    with lock:
                        out.write(json.dumps({"k": "ready", "n": kind}) + "\n")
                while True:
                    for event in watch.Watch().stream(lister, resource_version=rv, timeout_seconds=240,
                                                      allow_watch_bookmarks=True, deserialize=False):
                        obj = event["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            handler(obj)
            except Exception as err:  # noqa: BLE001 - 410 Gone or a dropped connection: relist and go on
                with lock:
                    out.write(json.dumps({"k": "error", "n": kind, "e": repr(err)[:300]}) + "\n")
                time.sleep(0.2)

    def api():
        return config.new_client_from_config(config_file=kubeconfig)

    core, batch, custom = client.CoreV1Api(api()), client.BatchV1Api(api()), client.CustomObjectsApi(api())
    threads = [
        threading.Thread(target=run, args=("pod", lambda **kw: core.list_namespaced_pod(namespace, **kw), on_pod), daemon=True),
        threading.Thread(target=run, args=("job", lambda **kw: batch.list_namespaced_job(namespace, **kw), on_job), daemon=True),
        threading.Thread(target=run, args=("campaign", lambda **kw: custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, CAMPAIGNS, **kw), on_campaign), daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class CampaignRecorder:
    """Starts the recorder process; `poll()` reads what it has written so far."""

    KINDS = {"pod", "job", "campaign"}

    def __init__(self, kubeconfig: Path, namespace: str, out_path: Path):
        self.out_path = out_path
        self.out_path.write_text("")
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        self.process = ctx.Process(target=_record, args=(str(kubeconfig), namespace, str(out_path)), daemon=True)
        self._offset = 0
        self._partial = ""
        self.first: dict[tuple[str, str, str], float] = {}  # (kind, name, event) -> monotonic time
        self.pods: dict[str, tuple[str | None, str | None]] = {}  # pod name -> (job name, completion index)
        self.ready: set[str] = set()
        self.errors: list[str] = []

    def start(self, timeout: float = 60) -> "CampaignRecorder":
        self.process.start()
        deadline = time.monotonic() + timeout
        while self.ready != self.KINDS:
            if not self.process.is_alive():
                raise AssertionError(f"the watch recorder exited with {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the watch recorder was not ready in {timeout}s: {self.errors[-3:]}")
            self.poll()
            time.sleep(0.05)
        return self

    def poll(self) -> None:
        with open(self.out_path) as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if not line:
                continue
            rec = json.loads(line)
            if rec["k"] == "ready":
                self.ready.add(rec["n"])
            elif rec["k"] == "error":
                self.errors.append(f"{rec['n']}: {rec['e']}")
            else:
                self.first.setdefault((rec["k"], rec["n"], rec["e"]), rec["t"])
                if rec["k"] == "pod":
                    self.pods.setdefault(rec["n"], (rec.get("j"), rec.get("i")))

    def at(self, kind: str, name: str, event: str) -> float | None:
        return self.first.get((kind, name, event))

    def pods_of(self, job: str) -> list[str]:
        return sorted(name for name, (job_name, _) in self.pods.items() if job_name == job)

    def pod_times(self, job: str, event: str) -> dict[str, float]:
        return {n: t for n in self.pods_of(job) if (t := self.first.get(("pod", n, event))) is not None}

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # our own child, by its handle
            self.process.join(timeout=10)


# ---------------------------------------------------------------------------------------------- fake GPU nodes

BENCH_NODE_LABEL = "boltz-operator.io/bench-node"
BENCH_TAINT = "boltz-operator.io/bench"
GPUS_PER_NODE = 8


def bench_gpu_node(name: str) -> dict:
    """A fake 8-GPU node like hack/cluster/manifests/nodes.yaml's, which kwok plays (it manages the nodes annotated
    kwok.x-k8s.io/node=fake), plus a label the bench's campaigns select and a taint only they tolerate: other
    tests' pods on a shared cluster never land on it, and the bench's pods land nowhere else."""
    resources = {"cpu": "64", "memory": "512Gi", "pods": "110", "ephemeral-storage": "1Ti", "nvidia.com/gpu": str(GPUS_PER_NODE)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                       "nvidia.com/gpu.count": str(GPUS_PER_NODE), BENCH_NODE_LABEL: "true"},
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
                            {"key": BENCH_TAINT, "value": "true", "effect": "NoSchedule"}]},
        "status": {"allocatable": resources, "capacity": resources,
                   "nodeInfo": {"kubeletVersion": "fake", "architecture": "amd64", "operatingSystem": "linux"}},
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

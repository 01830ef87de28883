"""BoltzGenCampaign scaling on the real local control plane: a 200-shard campaign on fake GPU nodes with a fixed
per-shard run time, at several parallelisms; wall time against the ideal, scaling against the smallest
parallelism, and the operator's API writes per shard.

Prints figures and writes them to .cluster/bench/campaign-scaling-<time>.json. Asserts only that every campaign
finished as it should (Succeeded, every shard run exactly once, one filter pod): timings on a shared 2-core machine
are compared as ratios within one run, never asserted. See tests/bench/README.md ("Campaigns").

    BOLTZ_CLUSTER_DIR=/tmp/benchcluster .venv/bin/pytest tests/bench/test_campaign_scaling.py -s -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from support.bench_campaign import (
    BENCH_NODE_LABEL,
    BENCH_TAINT,
    CAMPAIGNS,
    GPUS_PER_NODE,
    JOB_NAME_LABEL,
    CampaignRecorder,
    bench_gpu_node,
    fit_line,
    node_schedulable,
    slot_refill_gaps,
    waves,
)
from support.bench_cluster import (
    OPERATOR_USER,
    RESULTS_DIR,
    OnlyThisOperator,
    admin_client,
    cpu_pids,
    create_namespace,
    delete_namespace,
    wait_for_earlier_bench_namespaces,
    wait_model_cache_ready,
    wait_operator_quiet,
)
from support.bench_recording import (
    GROUP,
    VERSION,
    AuditMark,
    CpuMeter,
    namespace_writes,
    other_operator_pids,
    owned_writes,
    percentile,
    token_jti,
    user_label,
    write_key,
)
from support.cluster_fixtures import Cluster
from support.manifests import campaign, filter_ok, merge_played, model_cache, played
from support.operator_fixtures import OperatorProcess
from support.wait import wait_until

pytestmark = pytest.mark.bench

SHARDS = int(os.environ.get("BOLTZ_BENCH_CAMPAIGN_SHARDS", "200"))
PARALLELISMS = [int(v) for v in os.environ.get("BOLTZ_BENCH_CAMPAIGN_PARALLELISM", "10,25,50,100").split(",")]
SHARD_SECONDS = float(os.environ.get("BOLTZ_BENCH_SHARD_SECONDS", "3"))  # what kwok plays per shard (and the filter)
DESIGNS_PER_SHARD = 10
BUDGET = 50
CACHE = "boltzgen"


def campaign_name(parallelism: int) -> str:
    return f"s{SHARDS}-p{parallelism:03d}"


# ---------------------------------------------------------------------------------------------- fake GPU nodes


class BenchGpuNodes:
    """Enough extra fake 8-GPU nodes for the largest parallelism, for the length of the bench only. The campaigns
    select them (nodeSelector + toleration), so the GPUs a run can use are exactly these: the cluster's own two GPU
    nodes (16 GPUs, maybe busy with other tests) play no part."""

    def __init__(self, core: client.CoreV1Api, gpus: int):
        self.core = core
        self.count = -(-gpus // GPUS_PER_NODE)
        self.names = [f"kwok-bench-gpu-{i}" for i in range(self.count)]

    def __enter__(self) -> BenchGpuNodes:
        self._delete_all()  # a crashed earlier run's
        for name in self.names:
            self.core.create_node(bench_gpu_node(name))
        wait_until(
            lambda: all(node_schedulable(self.core.read_node(n)) for n in self.names),
            timeout=120,
            interval=0.5,
            what=f"{self.count} bench GPU nodes Ready and untainted",
        )
        return self

    def _delete_all(self) -> None:
        for node in self.core.list_node(label_selector=f"{BENCH_NODE_LABEL}=true").items:
            try:
                self.core.delete_node(node.metadata.name)
            except ApiException as err:
                if err.status != 404:
                    raise

    def __exit__(self, *exc) -> None:
        self._delete_all()


# ---------------------------------------------------------------------------------------------- one campaign


def campaign_body(parallelism: int) -> dict:
    name = campaign_name(parallelism)
    duration = f"{int(SHARD_SECONDS * 1000)}ms"
    # Every pod (shard or filter) runs `duration` and exits 0; only the filter reports a summary (the operator reads
    # no shard's summary unless it failed). No per-index annotations: 200 of them would weigh on every pod write.
    pods = merge_played(
        played(run_duration=duration),
        played(filter_ok(list(range(SHARDS)), SHARDS * DESIGNS_PER_SHARD, BUDGET), only="filter"),
    )
    return campaign(
        name,
        pod_metadata=pods,
        modelCache=CACHE,
        numDesigns=SHARDS * DESIGNS_PER_SHARD,
        budget=BUDGET,
        shards=SHARDS,
        parallelism=parallelism,
        retriesPerShard=0,
        minSuccessfulShardFraction=1.0,
        resources={
            "gpus": 1,
            "nodeSelector": {BENCH_NODE_LABEL: "true"},
            "tolerations": [{"key": BENCH_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        },
    )


def audit_of_campaign(mark: AuditMark, namespace: str, name: str, operator_jti: str | None) -> dict:
    """Every write since mark on the campaign or its children (by name: <name> status, <name>-design and
    <name>-filter Jobs and pods, <name>-campaign-run ConfigMap, <name>.<hex> Events), by writer. Creates by
    generateName (the Job controller's pods) have no name in the audit log: the campaign runs alone in the namespace
    (the previous one's pods are gone before the mark), so the unnamed writes there are its own too."""
    events = owned_writes(namespace_writes(mark, namespace), re.compile(rf"^{re.escape(name)}(?:$|[-.])"))
    labels = [user_label(e, OPERATOR_USER, operator_jti) for e in events]
    ours = [e for e, label in zip(events, labels) if label == "operator (this bench)"]
    by_user = Counter(label for label in labels if not label.startswith("operator (ANOTHER"))
    by_user_key = Counter(
        f"{label}: {write_key(e)}" for e, label in zip(events, labels) if not label.startswith("operator (ANOTHER")
    )
    return {
        "operator_writes": len(ours),
        "operator_breakdown": dict(Counter(write_key(e) for e in ours).most_common()),
        "operator_status_patches": sum(1 for e in ours if (e.get("objectRef") or {}).get("subresource") == "status"),
        "all_writes": sum(by_user.values()),
        "all_by_user": dict(by_user.most_common()),
        "all_by_user_and_kind": dict(by_user_key.most_common()),
        "foreign_operator_writes": sum(1 for label in labels if label.startswith("operator (ANOTHER")),
    }


def run_campaign(
    api: client.ApiClient,
    cluster: Cluster,
    namespace: str,
    parallelism: int,
    recorder: CampaignRecorder,
    operator: OperatorProcess,
    operator_jti: str | None,
    pids: dict[str, int],
) -> dict:
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    name = campaign_name(parallelism)
    design_job, filter_job = f"{name}-design", f"{name}-filter"
    ideal_design = waves(SHARDS, parallelism) * SHARD_SECONDS
    timeout = 4 * (ideal_design + SHARD_SECONDS) + 180

    others_seen = set(other_operator_pids(exclude=(operator.proc.pid,)))
    meter = CpuMeter(pids).start()
    mark = AuditMark.now(cluster.audit_log)
    t0 = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, CAMPAIGNS, campaign_body(parallelism))
    t_created = time.monotonic()
    deadline, next_report = t0 + timeout, 0.0
    while True:
        recorder.poll()
        done = recorder.at("campaign", name, "Succeeded") or recorder.at("campaign", name, "Failed")
        now = time.monotonic()
        if done or now > deadline:
            break
        if now >= next_report:
            print(
                f"[bench]   {now - t0:6.1f} s: {len(recorder.pod_times(design_job, 'Running'))} shards started, "
                f"{len(recorder.pod_times(design_job, 'Succeeded'))} done"
            )
            next_report = now + 15
        if not recorder.process.is_alive():
            pytest.fail(f"the watch recorder died ({recorder.process.exitcode}): {recorder.errors[-3:]}")
        time.sleep(0.1)  # polling the recorder's file; bounded by `timeout` above
    cpu = meter.stop()
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, CAMPAIGNS, name)
    status = obj.get("status") or {}
    assert status.get("phase") == "Succeeded", (
        f"{name}: phase {status.get('phase')} after {time.monotonic() - t0:.0f} s: {status.get('message')}; "
        f"operator log: {operator.log_path}"
    )

    # Writes after Succeeded belong to the run too.
    late_writes = wait_operator_quiet(cluster, namespace, operator_jti)
    recorder.poll()
    writes = audit_of_campaign(mark, namespace, name, operator_jti)
    jobs = {j: batch.read_namespaced_job_status(j, namespace) for j in (design_job, filter_job)}

    # Times, from the watch.
    at = recorder.at
    running = recorder.pod_times(design_job, "Running")
    succeeded = recorder.pod_times(design_job, "Succeeded")
    design_pods = recorder.pods_of(design_job)
    filter_pods = recorder.pods_of(filter_job)
    indexes = Counter(recorder.pods[p][1] for p in design_pods)
    t_done = at("campaign", name, "Succeeded")
    t_job, t_job_complete = at("job", design_job, "added"), at("job", design_job, "complete")
    # The design phase ends when the Job's outcome is settled (SuccessCriteriaMet), which is when the operator goes on.
    t_job_done = min(t for t in (at("job", design_job, "successcriteriamet"), t_job_complete) if t is not None)
    t_filter_job = at("job", filter_job, "added")
    filter_running = [t for p in filter_pods if (t := at("pod", p, "Running"))]
    filter_succeeded = [t for p in filter_pods if (t := at("pod", p, "Succeeded"))]
    busy = sum(succeeded[p] - running[p] for p in succeeded if p in running)
    shards_wall = max(succeeded.values()) - min(running.values())
    gaps = slot_refill_gaps(list(succeeded.values()), list(running.values()), parallelism)
    added, scheduled = recorder.pod_times(design_job, "added"), recorder.pod_times(design_job, "scheduled")
    starts = sorted(running.values())
    to_scheduled = [scheduled[p] - added[p] for p in scheduled if p in added]
    to_running = [running[p] - scheduled[p] for p in running if p in scheduled]

    design_status = jobs[design_job].status
    design_api = (design_status.completion_time - design_status.start_time).total_seconds()
    created_api = datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    completed_api = datetime.fromisoformat(status["completionTime"].replace("Z", "+00:00"))
    n_waves = waves(SHARDS, parallelism)
    figures = {
        "campaign": name,
        "shards": SHARDS,
        "parallelism": parallelism,
        "waves": n_waves,
        "shard_seconds": SHARD_SECONDS,
        "ideal_design_seconds": ideal_design,
        "ideal_campaign_seconds": ideal_design + SHARD_SECONDS,
        "campaign_seconds": t_done - t0,
        "campaign_seconds_api": (completed_api - created_api).total_seconds(),
        "design_seconds": t_job_done - t_job,
        "design_seconds_api": design_api,
        "shards_seconds": shards_wall,
        "slot_busy_fraction": busy / (parallelism * shards_wall),
        "slot_refill_gap_seconds": {
            "n": len(gaps),
            "p50": percentile(gaps, 50),
            "p90": percentile(gaps, 90),
            "max": max(gaps) if gaps else None,
        },
        "pod_created_to_scheduled_seconds": {"p50": percentile(to_scheduled, 50), "p90": percentile(to_scheduled, 90)},
        "pod_scheduled_to_running_seconds": {"p50": percentile(to_running, 50), "p90": percentile(to_running, 90)},
        "overheads_seconds": {
            "create call": t_created - t0,
            "created -> design Job seen": t_job - t0,
            "design Job -> first shard Running": min(running.values()) - t_job,
            "first wave: first -> last of its shards Running": starts[min(parallelism, len(starts)) - 1] - starts[0],
            "last shard Succeeded -> design Job succeeded": t_job_done - max(succeeded.values()),
            "design Job succeeded -> filter Job seen": t_filter_job - t_job_done,
            "design Job succeeded -> its Complete": t_job_complete - t_job_done,
            "filter Job -> filter Running": min(filter_running) - t_filter_job,
            "filter Running -> Succeeded": max(filter_succeeded) - min(filter_running),
            "filter Succeeded -> campaign Succeeded": t_done - max(filter_succeeded),
        },
        "design_pods": len(design_pods),
        "distinct_indexes": len(indexes),
        "filter_pods": len(filter_pods),
        "progress": status.get("progress"),
        "writes": writes,
        "late_operator_writes_after_succeeded": late_writes,
        "cpu": cpu,
        "other_operator_pids_seen": sorted(others_seen),
        "recorder_errors": list(recorder.errors),
    }
    assert len(design_pods) == SHARDS and len(indexes) == SHARDS, (
        f"{name}: {len(design_pods)} shard pods for {len(indexes)} indexes"
    )
    assert len(filter_pods) == 1, f"{name}: {len(filter_pods)} filter pods"
    assert (status.get("progress") or {}).get("shardsSucceeded") == SHARDS

    # The next run starts on a clean namespace: delete this campaign and wait for its Jobs and pods to be gone.
    t_delete = time.monotonic()
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, CAMPAIGNS, name)
    selector = f"{JOB_NAME_LABEL} in ({design_job},{filter_job})"
    try:
        wait_until(
            lambda: (
                not core.list_namespaced_pod(namespace, label_selector=selector).items
                and not [
                    j for j in batch.list_namespaced_job(namespace).items if j.metadata.name in (design_job, filter_job)
                ]
            ),
            timeout=300,
            interval=1,
            what=f"{name}'s Jobs and pods deleted",
        )
        figures["cleanup_seconds"] = time.monotonic() - t_delete
    except AssertionError as err:
        print(f"[bench] WARNING: {err}")
        figures["cleanup_seconds"] = None
    return figures


# ---------------------------------------------------------------------------------------------- the benchmark


def test_campaign_scaling(cluster: Cluster, operator_identity: Path, tmp_path: Path):
    api = admin_client(cluster)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    assert all(1 <= p <= SHARDS for p in PARALLELISMS), f"parallelism must be 1..{SHARDS}: {PARALLELISMS}"

    wait_for_earlier_bench_namespaces(core)

    namespace = create_namespace(core, "bench-campaign", wait_for_default_sa=True)
    recorder = CampaignRecorder(cluster.kubeconfig, namespace, tmp_path / "watch.jsonl")
    operator = OperatorProcess(
        cluster, operator_identity, RESULTS_DIR / f"operator-campaign-{stamp}.log", namespaces=[namespace]
    )
    operator_jti = token_jti(operator_identity)
    assert operator_jti, "the operator's token has no jti claim: its writes cannot be told from other operators'"
    guard = OnlyThisOperator(api, namespace, operator_jti)
    nodes = BenchGpuNodes(core, max(PARALLELISMS))
    runs = []
    try:
        with guard, nodes:
            print(
                f"\n[bench] {nodes.count} extra fake GPU nodes ({nodes.count * GPUS_PER_NODE} GPUs) for the bench's campaigns"
            )
            guard.wait_effective(cluster, operator_identity, tmp_path)
            recorder.start()
            operator.start()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "boltzmodelcaches", model_cache(CACHE, bundles=["boltzgen"])
            )
            wait_model_cache_ready(custom, namespace, CACHE, operator)
            pids = cpu_pids(cluster, operator, recorder)
            for parallelism in PARALLELISMS:
                print(
                    f"[bench] campaign {campaign_name(parallelism)}: {SHARDS} shards of {SHARD_SECONDS:g} s, "
                    f"parallelism {parallelism} (ideal {waves(SHARDS, parallelism) * SHARD_SECONDS:.0f} s of shards)"
                )
                runs.append(run_campaign(api, cluster, namespace, parallelism, recorder, operator, operator_jti, pids))
                print(
                    f"[bench]   Succeeded after {runs[-1]['campaign_seconds']:.1f} s; "
                    f"{runs[-1]['writes']['operator_writes']} operator writes"
                )
    finally:
        operator.stop()
        recorder.stop()
        delete_namespace(core, namespace, wait=300)

    figures = {
        "date": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {
            "shards": SHARDS,
            "parallelism": PARALLELISMS,
            "shard_seconds": SHARD_SECONDS,
            "bench_gpus": nodes.count * GPUS_PER_NODE,
            "namespace": namespace,
            "operator_log": str(operator.log_path),
        },
        "runs": runs,
        "scaling": scaling(runs),
    }
    out = RESULTS_DIR / f"campaign-scaling-{stamp}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    report(figures, out)


def scaling(runs: list[dict]) -> dict:
    """Against the smallest parallelism p0: the design phase's speedup(p) / (p / p0) (1.0 is linear; the shards are
    the only part that parallelism divides); the whole campaign's speedup over its ideal speedup ((waves + 1) x shard
    time: the filter step runs alone, so even a perfect campaign scales less than linearly). And a fit of the times
    to a + waves x b: b - shard time is the idle time each wave adds, a a run's fixed cost."""
    base = min(runs, key=lambda r: r["parallelism"])
    out = {}
    for r in runs:
        linear = r["parallelism"] / base["parallelism"]
        out[r["campaign"]] = {
            "design_vs_linear": base["design_seconds"] / r["design_seconds"] / linear,
            "ideal_design_vs_linear": base["ideal_design_seconds"]
            / r["ideal_design_seconds"]
            / linear,  # < 1: shards % p
            "campaign_vs_linear": base["campaign_seconds"] / r["campaign_seconds"] / linear,
            "campaign_vs_ideal": (base["campaign_seconds"] / r["campaign_seconds"])
            / (base["ideal_campaign_seconds"] / r["ideal_campaign_seconds"]),
        }
    fit = fit_line([r["waves"] for r in runs], [r["design_seconds"] for r in runs])
    fit_campaign = fit_line([r["waves"] for r in runs], [r["campaign_seconds"] for r in runs])
    return {
        "relative_to": base["campaign"],
        "by_run": out,
        "design_fit": {"fixed_seconds": fit[0], "per_wave_seconds": fit[1]} if fit else None,
        "campaign_fit": {"fixed_seconds": fit_campaign[0], "per_wave_seconds": fit_campaign[1]}
        if fit_campaign
        else None,
    }


def report(f: dict, out: Path) -> None:
    cfg, runs, sc = f["config"], f["runs"], f["scaling"]
    d = cfg["shard_seconds"]
    lines = [
        "",
        f"=== campaign scaling: {cfg['shards']} shards of {d:g} s each, {cfg['bench_gpus']} fake GPUs, "
        f"{f['machine']['cpus']} CPUs, {f['date']} ===",
        f"design = design Job seen -> its outcome seen (SuccessCriteriaMet); eff. = ideal / measured; scaling against "
        f"p={min(r['parallelism'] for r in runs)}: design speedup / linear, campaign speedup / its ideal speedup",
        "    p | waves | design: ideal | measured | eff. | Job status | scaling || campaign: ideal | measured | eff. "
        "| scaling || slot busy | refill gap p50 / p90",
    ]
    for r in runs:
        s = sc["by_run"][r["campaign"]]
        gap = r["slot_refill_gap_seconds"]
        lines.append(
            f"{r['parallelism']:5d} | {r['waves']:5d} | {r['ideal_design_seconds']:11.1f} s | {r['design_seconds']:6.1f} s | "
            f"{r['ideal_design_seconds'] / r['design_seconds']:4.2f} | {r['design_seconds_api']:8.0f} s | "
            f"{s['design_vs_linear']:7.2f} || {r['ideal_campaign_seconds']:13.1f} s | {r['campaign_seconds']:6.1f} s | "
            f"{r['ideal_campaign_seconds'] / r['campaign_seconds']:4.2f} | {s['campaign_vs_ideal']:7.2f} || "
            f"{r['slot_busy_fraction']:9.2f} | {fmt(gap['p50'])} / {fmt(gap['p90'])}"
        )
    if sc["design_fit"]:
        df, cf = sc["design_fit"], sc["campaign_fit"]
        lines.append(
            f"fit, design phase:   {df['fixed_seconds']:5.2f} s + waves x {df['per_wave_seconds']:.2f} s "
            f"(shard {d:g} s + {df['per_wave_seconds'] - d:.2f} s idle per wave)"
        )
        lines.append(
            f"fit, whole campaign: {cf['fixed_seconds']:5.2f} s + waves x {cf['per_wave_seconds']:.2f} s "
            f"(the filter's {d:g} s is in the fixed part)"
        )
    lines.append("where the time goes (s), per run: " + ", ".join(r["campaign"] for r in runs))
    for key in runs[0]["overheads_seconds"]:
        lines.append(f"  {key:48s} " + "  ".join(f"{r['overheads_seconds'][key]:6.2f}" for r in runs))
    lines.append(
        "  shard pod created -> scheduled p50 / p90          "
        + "  ".join(
            f"{fmt(r['pod_created_to_scheduled_seconds']['p50'])} / {fmt(r['pod_created_to_scheduled_seconds']['p90'])}"
            for r in runs
        )
    )
    lines.append(
        "  shard pod scheduled -> Running (kwok) p50 / p90   "
        + "  ".join(
            f"{fmt(r['pod_scheduled_to_running_seconds']['p50'])} / {fmt(r['pod_scheduled_to_running_seconds']['p90'])}"
            for r in runs
        )
    )
    lines.append("operator writes per shard (the campaign's whole life, by verb resource -> code):")
    for r in runs:
        w = r["writes"]
        lines.append(
            f"  p={r['parallelism']:<4d} {w['operator_writes'] / r['shards']:.3f}/shard ({w['operator_writes']} writes; "
            f"status patches {w['operator_status_patches']}): {w['operator_breakdown']}"
        )
    lines.append("all writers' writes per shard:")
    for r in runs:
        w = r["writes"]
        lines.append(
            f"  p={r['parallelism']:<4d} {w['all_writes'] / r['shards']:.2f}: "
            + ", ".join(f"{u} {c / r['shards']:.2f}" for u, c in w["all_by_user"].items())
        )
    lines.append(
        "  Job status updates by the Job controller (design + filter Job): "
        + ", ".join(f"p={r['parallelism']} {job_status_updates(r)}" for r in runs)
    )
    for r in runs:
        cpu = r["cpu"]
        lines.append(
            f"CPU p={r['parallelism']} ({cpu['wall_seconds']:.0f} s, {cpu['machine_busy_cpu_seconds'] / cpu['wall_seconds']:.2f} "
            f"of {cpu['cores']} cores busy): "
            + ", ".join(
                f"{n} {s / cpu['wall_seconds']:.2f}"
                for n, s in sorted(cpu["cpu_seconds"].items(), key=lambda kv: -kv[1])
            )
            + f", everything else {cpu['others_cpu_seconds'] / cpu['wall_seconds']:.2f}"
        )
    others = sorted({pid for r in runs for pid in r["other_operator_pids_seen"]})
    if others:
        lines.append(
            f"note: other operator processes ran on this machine during the runs (pids {others}): their CPU is in the timings"
        )
    if any(r["writes"]["foreign_operator_writes"] for r in runs):
        lines.append(
            "note: other operator processes tried writes in the bench namespace (refused): "
            + ", ".join(f"p={r['parallelism']} {r['writes']['foreign_operator_writes']}" for r in runs)
        )
    if any(r["recorder_errors"] for r in runs):
        lines.append(f"note: the watch recorder restarted: {runs[-1]['recorder_errors'][:3]}")
    lines.append(f"figures written to {out}")
    print("\n".join(lines))


def job_status_updates(run: dict) -> int:
    return sum(
        c
        for k, c in run["writes"]["all_by_user_and_kind"].items()
        if k.startswith("system:serviceaccount:kube-system:job-controller: update jobs/status")
    )


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"

"""BoltzScreen scaling on the real local control plane: a 100,000-ligand screen in 200 shards on fake GPU nodes, kwok
playing prepare (it reports the library size), each shard (a fixed run time) and rank; the same screen at several
parallelisms: wall time against the ideal, scaling against the smallest parallelism, the operator's API writes per
shard; then screens whose prepare reports 1,000 and 100,000 ligands, for the operator's memory against library size.

Prints figures and writes them to .cluster/bench/screen-scaling-<time>.json. Asserts only that every screen finished
as it should (Succeeded, every shard index run exactly once, one prepare and one rank pod). See tests/bench/README.md
("Screens").

    BOLTZ_CLUSTER_DIR=/tmp/screenbench .venv/bin/pytest tests/bench/test_screen_scaling.py -s -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.test_campaign_scaling import BenchGpuNodes, audit_of_campaign, fmt, job_status_updates
from bench.test_operator_memory import proc_status, settled_rss
from kubernetes import client

from support.bench_campaign import GPUS_PER_NODE, JOB_NAME_LABEL, fit_line, slot_refill_gaps, waves
from support.bench_cluster import (
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
from support.bench_recording import GROUP, VERSION, AuditMark, CpuMeter, other_operator_pids, percentile, token_jti
from support.bench_screen import SCREENS, ScreenRecorder, reset_peak_rss, screen_body
from support.cluster_fixtures import Cluster
from support.manifests import model_cache
from support.operator_fixtures import OperatorProcess
from support.wait import wait_until

pytestmark = pytest.mark.bench

SHARDS = int(os.environ.get("BOLTZ_BENCH_SCREEN_SHARDS", "200"))
LIGANDS = int(os.environ.get("BOLTZ_BENCH_SCREEN_LIGANDS", "100000"))  # what prepare reports in the scaling runs
PARALLELISMS = [int(v) for v in os.environ.get("BOLTZ_BENCH_SCREEN_PARALLELISM", "10,25,50").split(",")]
SHARD_SECONDS = float(os.environ.get("BOLTZ_BENCH_SHARD_SECONDS", "3"))  # each pod's run time: prepare, shard, rank
# Library sizes of the memory runs (one screen each, at the largest parallelism, after the scaling runs); "": none.
MEMORY_LIGANDS = [
    int(v) for v in os.environ.get("BOLTZ_BENCH_SCREEN_MEMORY_LIGANDS", "1000,100000,1000,100000").split(",") if v
]


def step_jobs(name: str) -> tuple[str, str, str]:
    return f"{name}-screenprep", f"{name}-screen", f"{name}-rank"


def run_screen(api, cluster: Cluster, namespace: str, name: str, ligands: int, parallelism: int, ctx: dict) -> dict:
    """One screen from create to Succeeded, its figures, then deleted (its Jobs and pods gone before the next)."""
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    recorder, operator, jti = ctx["recorder"], ctx["operator"], ctx["jti"]
    pid = operator.proc.pid
    prepare_job, shard_job, rank_job = step_jobs(name)
    n_waves = waves(SHARDS, parallelism)
    ideal_shards = n_waves * SHARD_SECONDS
    timeout = 4 * (ideal_shards + 2 * SHARD_SECONDS) + 180

    rss_before = settled_rss(pid)
    reset_peak_rss(pid)
    others_seen = set(other_operator_pids(exclude=(pid,)))
    meter = CpuMeter(ctx["pids"]).start()
    mark = AuditMark.now(cluster.audit_log)
    t0 = time.monotonic()
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, SCREENS, screen_body(name, SHARDS, ligands, parallelism, SHARD_SECONDS)
    )
    deadline, next_report = t0 + timeout, 0.0
    while True:
        recorder.poll()
        done = recorder.screen_at(name, "Succeeded") or recorder.screen_at(name, "Failed")
        now = time.monotonic()
        if done or now > deadline:
            break
        if now >= next_report:
            print(
                f"[bench]   {now - t0:6.1f} s: {len(recorder.pod_times(shard_job, 'Running'))} shards started, "
                f"{len(recorder.pod_times(shard_job, 'Succeeded'))} done"
            )
            next_report = now + 15
        if not recorder.process.is_alive():
            pytest.fail(f"the watch recorder died ({recorder.process.exitcode}): {recorder.errors[-3:]}")
        time.sleep(0.1)  # polling the recorder's file; bounded by `timeout` above
    cpu = meter.stop()
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SCREENS, name)
    status = obj.get("status") or {}
    assert status.get("phase") == "Succeeded", (
        f"{name}: phase {status.get('phase')} after {time.monotonic() - t0:.0f} s: {status.get('message')}; "
        f"operator log: {operator.log_path}"
    )
    late_writes = wait_operator_quiet(cluster, namespace, jti)  # writes after Succeeded belong to the run too
    peak = proc_status(pid)["VmHWM"]
    rss_after = settled_rss(pid)
    recorder.poll()
    writes = audit_of_campaign(mark, namespace, name, jti)

    at, pod_times = recorder.at, recorder.pod_times
    running, succeeded = pod_times(shard_job, "Running"), pod_times(shard_job, "Succeeded")
    shard_pods = recorder.pods_of(shard_job)
    indexes = Counter(recorder.pods[p][1] for p in shard_pods)
    prepare_pods, rank_pods = recorder.pods_of(prepare_job), recorder.pods_of(rank_job)
    t_done = recorder.screen_at(name, "Succeeded")
    t_job = at("job", shard_job, "added")
    t_job_done = min(t for t in (at("job", shard_job, "successcriteriamet"), at("job", shard_job, "complete")) if t)
    prep_ok, rank_ok = pod_times(prepare_job, "Succeeded"), pod_times(rank_job, "Succeeded")
    busy = sum(succeeded[p] - running[p] for p in succeeded if p in running)
    shards_wall = max(succeeded.values()) - min(running.values())
    gaps = slot_refill_gaps(list(succeeded.values()), list(running.values()), parallelism)
    starts = sorted(running.values())
    figures = {
        "screen": name,
        "ligands": ligands,
        "shards": SHARDS,
        "parallelism": parallelism,
        "waves": n_waves,
        "shard_seconds": SHARD_SECONDS,
        "ideal_shards_seconds": ideal_shards,
        "ideal_screen_seconds": ideal_shards + 2 * SHARD_SECONDS,  # prepare and rank run alone, one pod each
        "screen_seconds": t_done - t0,
        "shards_seconds": t_job_done - t_job,  # shard Job seen -> its outcome seen
        "slot_busy_fraction": busy / (parallelism * shards_wall),
        "slot_refill_gap_seconds": {"n": len(gaps), "p50": percentile(gaps, 50), "p90": percentile(gaps, 90)},
        "overheads_seconds": {
            "create -> prepare Job seen": at("job", prepare_job, "added") - t0,
            "prepare pod Succeeded -> shard Job seen": t_job - max(prep_ok.values()),
            "shard Job -> first shard Running": min(running.values()) - t_job,
            "first wave: first -> last of its shards Running": starts[min(parallelism, len(starts)) - 1] - starts[0],
            "last shard Succeeded -> shard Job outcome": t_job_done - max(succeeded.values()),
            "shard Job outcome -> rank Job seen": at("job", rank_job, "added") - t_job_done,
            "rank pod Succeeded -> screen Succeeded": t_done - max(rank_ok.values()),
        },
        "shard_pods": len(shard_pods),
        "distinct_indexes": len(indexes),
        "prepare_pods": len(prepare_pods),
        "rank_pods": len(rank_pods),
        "progress": status.get("progress"),
        "writes": writes,
        "late_operator_writes_after_succeeded": late_writes,
        "operator_kb": {"before": rss_before["VmRSS"], "peak": peak, "after": rss_after["VmRSS"]},
        "cpu": cpu,
        "other_operator_pids_seen": sorted(others_seen),
        "recorder_errors": list(recorder.errors),
    }
    assert len(shard_pods) == SHARDS and len(indexes) == SHARDS, (
        f"{name}: {len(shard_pods)} pods, {len(indexes)} indexes"
    )
    assert (len(prepare_pods), len(rank_pods)) == (1, 1), f"{name}: {len(prepare_pods)} prepare, {len(rank_pods)} rank"
    progress = status.get("progress") or {}
    assert (progress.get("shardsSucceeded"), progress.get("ligandsTotal")) == (SHARDS, ligands), progress

    t_delete = time.monotonic()
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, SCREENS, name)
    jobs, selector = step_jobs(name), f"{JOB_NAME_LABEL} in ({','.join(step_jobs(name))})"
    try:
        wait_until(
            lambda: (
                not core.list_namespaced_pod(namespace, label_selector=selector).items
                and not [j for j in batch.list_namespaced_job(namespace).items if j.metadata.name in jobs]
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


def test_screen_scaling(cluster: Cluster, operator_identity: Path, tmp_path: Path):
    api = admin_client(cluster)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    assert all(1 <= p <= SHARDS for p in PARALLELISMS), f"parallelism must be 1..{SHARDS}: {PARALLELISMS}"
    plan = [(f"l{LIGANDS}-p{p:03d}", LIGANDS, p) for p in PARALLELISMS]
    p_mem = max(PARALLELISMS)
    plan += [(f"mem{i}-l{n}-p{p_mem:03d}", n, p_mem) for i, n in enumerate(MEMORY_LIGANDS)]

    wait_for_earlier_bench_namespaces(core)
    namespace = create_namespace(core, "bench-screen", wait_for_default_sa=True)
    recorder = ScreenRecorder(cluster.kubeconfig, namespace, tmp_path / "watch.jsonl")
    operator = OperatorProcess(
        cluster, operator_identity, RESULTS_DIR / f"operator-screen-{stamp}.log", namespaces=[namespace]
    )
    jti = token_jti(operator_identity)
    assert jti, "the operator's token has no jti claim: its writes cannot be told from other operators'"
    guard = OnlyThisOperator(api, namespace, jti)
    nodes = BenchGpuNodes(core, max(PARALLELISMS))
    runs = []
    try:
        with guard, nodes:
            print(f"\n[bench] {nodes.count} extra fake GPU nodes ({nodes.count * GPUS_PER_NODE} GPUs)")
            guard.wait_effective(cluster, operator_identity, tmp_path)
            recorder.start()
            operator.start()
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "boltzmodelcaches", model_cache())
            wait_model_cache_ready(custom, namespace, "default", operator)
            ctx = {
                "recorder": recorder,
                "operator": operator,
                "jti": jti,
                "pids": cpu_pids(cluster, operator, recorder),
            }
            for name, ligands, p in plan:
                print(
                    f"[bench] screen {name}: {ligands} ligands, {SHARDS} shards of {SHARD_SECONDS:g} s, parallelism {p}"
                )
                runs.append(run_screen(api, cluster, namespace, name, ligands, p, ctx))
                r = runs[-1]
                print(
                    f"[bench]   Succeeded after {r['screen_seconds']:.1f} s; {r['writes']['operator_writes']} operator "
                    f"writes; operator VmRSS {r['operator_kb']['after'] / 1024:.1f} MB, peak {r['operator_kb']['peak'] / 1024:.1f} MB"
                )
    finally:
        operator.stop()
        recorder.stop()
        delete_namespace(core, namespace, wait=300)

    scaling_runs = runs[: len(PARALLELISMS)]
    figures = {
        "date": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {
            "shards": SHARDS,
            "ligands": LIGANDS,
            "parallelism": PARALLELISMS,
            "memory_ligands": MEMORY_LIGANDS,
            "shard_seconds": SHARD_SECONDS,
            "bench_gpus": nodes.count * GPUS_PER_NODE,
            "namespace": namespace,
            "operator_log": str(operator.log_path),
        },
        "runs": runs,
        "scaling": scaling(scaling_runs),
    }
    out = RESULTS_DIR / f"screen-scaling-{stamp}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    report(figures, scaling_runs, out)


def scaling(runs: list[dict]) -> dict:
    """Against the smallest parallelism p0: the shard phase's speedup(p) / (p / p0) (1.0 is linear), the screen's
    speedup over its ideal speedup ((waves + 2) x shard time: prepare and rank run alone); a fit of the shard phase
    to a + waves x b (b - shard time: the idle time each wave adds)."""
    base = min(runs, key=lambda r: r["parallelism"])
    by_run = {}
    for r in runs:
        linear = r["parallelism"] / base["parallelism"]
        by_run[r["screen"]] = {
            "shards_vs_linear": base["shards_seconds"] / r["shards_seconds"] / linear,
            "screen_vs_ideal": (base["screen_seconds"] / r["screen_seconds"])
            / (base["ideal_screen_seconds"] / r["ideal_screen_seconds"]),
        }
    fit = fit_line([r["waves"] for r in runs], [r["shards_seconds"] for r in runs])
    return {
        "relative_to": base["screen"],
        "by_run": by_run,
        "shards_fit": {"fixed_seconds": fit[0], "per_wave_seconds": fit[1]} if fit else None,
    }


def report(f: dict, scaling_runs: list[dict], out: Path) -> None:
    cfg, runs, sc, d = f["config"], f["runs"], f["scaling"], f["config"]["shard_seconds"]
    lines = [
        "",
        f"=== screen scaling: {cfg['ligands']} ligands in {cfg['shards']} shards of {d:g} s, {cfg['bench_gpus']} "
        f"fake GPUs, {f['machine']['cpus']} CPUs, {f['date']} ===",
        "shards = shard Job seen -> its outcome seen; eff. = ideal / measured; scaling against "
        f"p={min(r['parallelism'] for r in scaling_runs)}: shards speedup / linear, screen speedup / its ideal speedup",
        "    p | waves | shards: ideal | measured | eff. | scaling || screen: ideal | measured | eff. | scaling "
        "|| slot busy | refill gap p50 / p90",
    ]
    for r in scaling_runs:
        s, gap = sc["by_run"][r["screen"]], r["slot_refill_gap_seconds"]
        lines.append(
            f"{r['parallelism']:5d} | {r['waves']:5d} | {r['ideal_shards_seconds']:11.1f} s | {r['shards_seconds']:6.1f} s"
            f" | {r['ideal_shards_seconds'] / r['shards_seconds']:4.2f} | {s['shards_vs_linear']:7.2f} || "
            f"{r['ideal_screen_seconds']:11.1f} s | {r['screen_seconds']:6.1f} s | "
            f"{r['ideal_screen_seconds'] / r['screen_seconds']:4.2f} | {s['screen_vs_ideal']:7.2f} || "
            f"{r['slot_busy_fraction']:9.2f} | {fmt(gap['p50'])} / {fmt(gap['p90'])}"
        )
    if sc["shards_fit"]:
        fit = sc["shards_fit"]
        lines.append(
            f"fit, shard phase: {fit['fixed_seconds']:5.2f} s + waves x {fit['per_wave_seconds']:.2f} s "
            f"(shard {d:g} s + {fit['per_wave_seconds'] - d:.2f} s idle per wave)"
        )
    lines.append("where the time goes (s), per run: " + ", ".join(r["screen"] for r in runs))
    for key in runs[0]["overheads_seconds"]:
        lines.append(f"  {key:48s} " + "  ".join(f"{r['overheads_seconds'][key]:6.2f}" for r in runs))
    lines.append("operator writes per shard (the screen's whole life, by verb resource -> code):")
    for r in runs:
        w = r["writes"]
        lines.append(
            f"  {r['screen']:22s} {w['operator_writes'] / r['shards']:.3f}/shard ({w['operator_writes']} writes; "
            f"status patches {w['operator_status_patches']}; after Succeeded {r['late_operator_writes_after_succeeded']}"
            f"): {w['operator_breakdown']}"
        )
    lines.append("all writers' writes per shard:")
    for r in runs:
        w = r["writes"]
        lines.append(
            f"  {r['screen']:22s} {w['all_writes'] / r['shards']:.2f}: "
            + ", ".join(f"{u} {c / r['shards']:.2f}" for u, c in w["all_by_user"].items())
        )
    lines.append(
        "  shard Job status updates by the Job controller: "
        + ", ".join(f"{r['screen']} {job_status_updates(r)}" for r in runs)
    )
    lines.append(
        "operator memory (MB; before: settled before the create, peak: VmHWM during the run, after: settled after Succeeded):"
    )
    for r in runs:
        kb = r["operator_kb"]
        lines.append(
            f"  {r['screen']:22s} {r['ligands']:>7d} ligands: before {kb['before'] / 1024:6.1f}, peak {kb['peak'] / 1024:6.1f}, "
            f"after {kb['after'] / 1024:6.1f}"
        )
    for r in runs:
        cpu = r["cpu"]
        lines.append(
            f"CPU {r['screen']} ({cpu['wall_seconds']:.0f} s, {cpu['machine_busy_cpu_seconds'] / cpu['wall_seconds']:.2f} "
            f"of {cpu['cores']} cores busy): "
            + ", ".join(
                f"{n} {s / cpu['wall_seconds']:.2f}"
                for n, s in sorted(cpu["cpu_seconds"].items(), key=lambda kv: -kv[1])
            )
            + f", everything else {cpu['others_cpu_seconds'] / cpu['wall_seconds']:.2f}"
        )
    others = sorted({pid for r in runs for pid in r["other_operator_pids_seen"]})
    if others:
        lines.append(f"note: other operator processes ran on this machine (pids {others}): their CPU is in the timings")
    if any(r["writes"]["foreign_operator_writes"] for r in runs):
        lines.append(
            "note: other operator processes tried writes in the bench namespace (refused): "
            + ", ".join(f"{r['screen']} {r['writes']['foreign_operator_writes']}" for r in runs)
        )
    if any(r["recorder_errors"] for r in runs):
        lines.append(f"note: the watch recorder restarted: {runs[-1]['recorder_errors'][:3]}")
    lines.append(f"figures written to {out}")
    print("\n".join(lines))

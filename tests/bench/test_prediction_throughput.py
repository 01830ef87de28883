"""Throughput, latency and API writes of BoltzPredictions at scale, on the real local control plane.

Prints figures and writes them to .cluster/bench/prediction-throughput-<time>.json. Asserts only that the run
finished (every prediction Succeeded, one Job each): timings on a shared 2-core machine are compared as ratios
within one run, never asserted. See tests/bench/README.md for what each figure means.

    .venv/bin/pytest tests/bench -s -p no:cacheprovider        # make bench
    BOLTZ_BENCH_PREDICTIONS=100 .venv/bin/pytest tests/bench -s -p no:cacheprovider
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

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
    WatchRecorder,
    fmt_s,
    group_by_prediction,
    namespace_writes,
    other_operator_pids,
    owned_writes,
    stage_time,
    summary,
    token_jti,
    unnamed,
    user_label,
    write_key,
)
from support.cluster_fixtures import Cluster
from support.manifests import model_cache, played, predict_ok, prediction
from support.operator_fixtures import OperatorProcess

pytestmark = pytest.mark.bench

PREDICTIONS = int(os.environ.get("BOLTZ_BENCH_PREDICTIONS", "500"))
RAW_JOBS = int(os.environ.get("BOLTZ_BENCH_RAW_JOBS", "500"))
THREADS = int(os.environ.get("BOLTZ_BENCH_THREADS", "16"))  # the operator's settings.execution.max_workers
TIMEOUT = float(os.environ.get("BOLTZ_BENCH_TIMEOUT", "1800"))  # seconds until every prediction Succeeded
# Other sessions' operators (-A) load the machine (their writes in the bench namespace are refused, see
# OnlyThisOperator): wait at most this long for none to be running.
QUIET_WAIT = float(os.environ.get("BOLTZ_BENCH_QUIET_WAIT", "300"))
PLURAL = "boltzpredictions"


# ---------------------------------------------------------------------------------------------- helpers


def minimal_job(name: str) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(
            suspend=True,
            template=client.V1PodTemplateSpec(
                spec=client.V1PodSpec(
                    restart_policy="Never", containers=[client.V1Container(name="c", image="registry.example/none:0")]
                )
            ),
        ),
    )


def timed_creates(names: list[str], create, threads: int) -> tuple[dict[str, float], float, float, list[float]]:
    """create(name) for every name from a thread pool: (return time of each call, t0, t_end, call durations)."""
    returned: dict[str, float] = {}
    durations: list[float] = []

    def one(name: str) -> None:
        started = time.monotonic()
        create(name)
        returned[name] = time.monotonic()
        durations.append(returned[name] - started)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, names))  # re-raises the first failure
    return returned, t0, time.monotonic(), durations


def job_times(recorder: WatchRecorder, event: str, names: list[str]) -> dict[str, float]:
    """{prediction name: when its Job (`<name>-predict`) was first seen with event}."""
    return {n: t for n in names if (t := recorder.first.get(("job", f"{n}-predict", event))) is not None}


def steady_rate(times: list[float]) -> float | None:
    """Arrivals per second between the 10th and 90th percentile arrival (leaves out ramp-up and tail)."""
    ordered = sorted(times)
    if len(ordered) < 10:
        return None
    lo, hi = int(len(ordered) * 0.1), int(len(ordered) * 0.9) - 1
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else None


def wait_for_no_other_operator(exclude: tuple[int, ...] = ()) -> list[int]:
    """Wait (at most QUIET_WAIT) until no other `boltz-operator run` runs on this machine; the pids still running."""
    deadline, next_report = time.monotonic() + QUIET_WAIT, 0.0
    while (pids := other_operator_pids(exclude)) and time.monotonic() < deadline:
        if time.monotonic() >= next_report:
            print(
                f"[bench] waiting for other operators to finish (pids {pids}; up to {QUIET_WAIT:.0f} s, BOLTZ_BENCH_QUIET_WAIT)"
            )
            next_report = time.monotonic() + 60
        time.sleep(2)  # polling /proc; bounded by QUIET_WAIT
    if pids:
        print(f"[bench] WARNING: other operators still running (pids {pids}): the figures may include their work")
    return pids


# ---------------------------------------------------------------------------------------------- phases


def measure_raw_write_rate(core: client.CoreV1Api, batch: client.BatchV1Api) -> dict:
    namespace = create_namespace(core, "bench-raw", wait_for_default_sa=False)
    names = [f"raw-{i:05d}" for i in range(RAW_JOBS)]
    try:
        # Untimed warm-up: one TLS connection per thread in the pool, as a long-running operator has them.
        timed_creates(
            [f"warmup-{i:03d}" for i in range(2 * THREADS)],
            lambda n: batch.create_namespaced_job(namespace, minimal_job(n)),
            THREADS,
        )
        returned, t0, t_end, durations = timed_creates(
            names, lambda n: batch.create_namespaced_job(namespace, minimal_job(n)), THREADS
        )
    finally:
        # Wait until it is gone: the namespace controller's deletes would load the apiserver during the next phase.
        deletion = delete_namespace(core, namespace, wait=300)
    elapsed = t_end - t0
    return {
        "jobs": len(returned),
        "threads": THREADS,
        "seconds": elapsed,
        "creates_per_second": len(returned) / elapsed,
        "create_call_seconds": summary(durations),
        "namespace": namespace,
        "namespace_deletion_seconds": deletion,
    }


def audit_figures(
    mark: AuditMark, namespace: str, names: list[str], operator_jti: str | None, creates_started: datetime
) -> dict:
    """The writes in the bench namespace since mark, from the audit log, per prediction and per user.
    creates_started: when the first prediction create was sent (the model cache's populate pod is older)."""
    events = namespace_writes(mark, namespace)
    owner = re.compile(r"^(p\d{4,})(?:$|[-.])")
    n = len(names)

    labels = [user_label(e, OPERATOR_USER, operator_jti) for e in events]
    ours = [e for e, label in zip(events, labels) if label == "operator (this bench)"]
    foreign = [e for e, label in zip(events, labels) if label.startswith("operator (ANOTHER")]
    grouped = group_by_prediction(ours, owner)

    per_prediction = {name: grouped.by_owner.get(name, []) for name in names}
    counts = Counter(len(w) for w in per_prediction.values())
    status_patches = Counter(
        sum(1 for e in w if (e.get("objectRef") or {}).get("subresource") == "status") for w in per_prediction.values()
    )
    breakdown = Counter(write_key(e) for w in per_prediction.values() for e in w)
    codes = Counter((e.get("responseStatus") or {}).get("code") for w in per_prediction.values() for e in w)

    # Writes it takes to start a prediction: its create (by the client) + the operator's writes up to and including
    # the first status write after its Job's create.
    start_writes = []
    for writes in per_prediction.values():
        ordered = sorted(writes, key=stage_time)
        job_at = next(
            (
                i
                for i, e in enumerate(ordered)
                if e.get("verb") == "create" and (e.get("objectRef") or {}).get("resource") == "jobs"
            ),
            None,
        )
        if job_at is None:
            continue
        status_at = next(
            (
                i
                for i, e in enumerate(ordered)
                if i > job_at and (e.get("objectRef") or {}).get("subresource") == "status"
            ),
            job_at,
        )
        start_writes.append(1 + status_at + 1)

    # Everything the apiserver wrote for the predictions, by user (Job controller pods, scheduler bindings, kwok...):
    # the writes on their objects by name, and the namespace's unnamed creates once the predictions are being created
    # (their Jobs' pods, which the Job controller creates by generateName: one per prediction).
    all_writes = owned_writes(events, owner, since=creates_started)
    by_user: Counter = Counter()
    for e in all_writes:
        label = user_label(e, OPERATOR_USER, operator_jti)
        if not label.startswith("operator (ANOTHER"):  # refused by the bench's admission policy, reported apart
            by_user[label] += 1
    cache_writes = Counter(write_key(e) for e in grouped.other)

    total = sum(len(w) for w in per_prediction.values())
    return {
        "operator_writes_total": total,
        "operator_writes_per_prediction": total / n,
        "per_prediction_distribution": dict(sorted(counts.items())),
        "status_patches_per_prediction_distribution": dict(sorted(status_patches.items())),
        "breakdown": dict(breakdown.most_common()),
        "status_codes": {str(k): v for k, v in codes.most_common()},
        "conflicts_409": codes.get(409, 0),
        "writes_to_start_per_prediction": (sum(start_writes) / len(start_writes)) if start_writes else None,
        "model_cache_operator_writes": dict(cache_writes.most_common()),
        "model_cache_operator_writes_total": sum(cache_writes.values()),
        "all_users_writes_per_prediction": sum(by_user.values()) / n,
        "all_users_breakdown_per_prediction": {u: c / n for u, c in by_user.most_common()},
        "all_users_unnamed_creates": sum(1 for e in all_writes if unnamed(e)),
        "foreign_operator_writes": len(foreign),
        "foreign_operator_breakdown": dict(Counter(write_key(e) for e in foreign).most_common()),
    }


# ---------------------------------------------------------------------------------------------- the benchmark


def test_prediction_throughput(cluster: Cluster, operator_identity: Path, tmp_path: Path):
    api = admin_client(cluster)
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    started_at = datetime.now(UTC)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    wait_for_earlier_bench_namespaces(core)

    # 1. What the apiserver takes: minimal suspended Jobs from a pool of THREADS threads.
    wait_for_no_other_operator()
    raw_before = measure_raw_write_rate(core, batch)
    print(
        f"\n[bench] raw apiserver write rate: {raw_before['jobs']} suspended Jobs in {raw_before['seconds']:.2f} s from "
        f"{THREADS} threads = {raw_before['creates_per_second']:.1f} creates/s "
        f"(namespace deleted in {fmt_s(raw_before['namespace_deletion_seconds'])})"
    )

    # 2. The predictions, with a fresh operator watching only their namespace, the only operator allowed to write there.
    namespace = create_namespace(core, "bench-pred", wait_for_default_sa=True)
    width = max(4, len(str(PREDICTIONS - 1)))
    names = [f"p{i:0{width}d}" for i in range(PREDICTIONS)]
    recorder = WatchRecorder(cluster.kubeconfig, namespace, tmp_path / "watch.jsonl")
    # Only the bench namespace: `-A` would also reconcile other tests' namespaces on a shared cluster.
    operator = OperatorProcess(
        cluster, operator_identity, RESULTS_DIR / f"operator-{stamp}.log", namespaces=[namespace]
    )
    operator_jti = token_jti(operator_identity)
    assert operator_jti, "the operator's token has no jti claim: its writes cannot be told from other operators'"
    guard = OnlyThisOperator(api, namespace, operator_jti)
    try:
        with guard:
            guard.wait_effective(cluster, operator_identity, tmp_path)
            recorder.start()
            others_seen = set(wait_for_no_other_operator())
            mark = AuditMark.now(cluster.audit_log)
            t_operator = time.monotonic()
            operator.start()

            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "boltzmodelcaches", model_cache())
            wait_model_cache_ready(custom, namespace, "default", operator)
            operator_to_cache_ready = time.monotonic() - t_operator
            print(f"[bench] operator started -> model cache Ready: {operator_to_cache_ready:.1f} s")

            bodies = {
                n: prediction(n, pod_metadata=played(predict_ok(f"s3://results/boltz/{namespace}/{n}"))) for n in names
            }
            print(f"[bench] creating {PREDICTIONS} BoltzPredictions from {THREADS} threads in {namespace}")
            meter = CpuMeter(cpu_pids(cluster, operator, recorder)).start()
            creates_started = datetime.now(UTC)
            created, t0, t_created, create_durations = timed_creates(
                names,
                lambda n: custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, bodies[n]),
                THREADS,
            )

            deadline, next_report, next_scan = t0 + TIMEOUT, 0.0, 0.0
            while True:
                recorder.poll()
                succeeded = recorder.times("pred", "Succeeded", names)
                failed = recorder.times("pred", "Failed", names)
                now = time.monotonic()
                if len(succeeded) + len(failed) == PREDICTIONS or now > deadline:
                    break
                if now >= next_scan:
                    others_seen.update(other_operator_pids(exclude=(operator.proc.pid,)))
                    next_scan = now + 2
                if now >= next_report:
                    print(
                        f"[bench] {now - t0:6.1f} s: {len(job_times(recorder, 'added', names))} Jobs, "
                        f"{len(job_times(recorder, 'complete', names))} complete, "
                        f"{len(succeeded)} Succeeded, {len(failed)} Failed"
                    )
                    next_report = now + 10
                if not recorder.process.is_alive():
                    pytest.fail(f"the watch recorder died ({recorder.process.exitcode}): {recorder.errors[-3:]}")
                time.sleep(0.25)  # polling the recorder's file; the waiting itself is bounded by TIMEOUT above

            assert not failed, (
                f"{len(failed)} predictions Failed, e.g. {sorted(failed)[:5]}; operator log: {operator.log_path}"
            )
            assert len(succeeded) == PREDICTIONS, (
                f"only {len(succeeded)}/{PREDICTIONS} Succeeded in {TIMEOUT:.0f} s (BOLTZ_BENCH_TIMEOUT); operator log: {operator.log_path}"
            )
            t_all = max(succeeded.values())
            cpu = meter.stop()

            # Writes after the last Succeeded belong to the predictions' lives too.
            late_writes = wait_operator_quiet(cluster, namespace, operator_jti)
            recorder.poll()
            operator.stop()
            recorder.stop()
            writes = audit_figures(mark, namespace, names, operator_jti, creates_started)
            # Again after the predictions (before their namespace's deletion loads the apiserver): the load of other
            # sessions changes by the minute, and the limit uses the mean of the two.
            raw_after = measure_raw_write_rate(core, batch)
            delete_namespace(core, namespace)
    finally:
        operator.stop()
        recorder.stop()
        delete_namespace(core, namespace)

    # 3. The figures.
    jobs_added = job_times(recorder, "added", names)
    jobs_complete = job_times(recorder, "complete", names)
    assert len(jobs_added) == PREDICTIONS, f"{len(jobs_added)} Jobs seen for {PREDICTIONS} predictions"

    t_last_job = max(jobs_added.values())
    started_rate = PREDICTIONS / (t_last_job - t0)
    started_steady = steady_rate(list(jobs_added.values()))
    apply_rate = PREDICTIONS / (t_created - t0)
    writes_to_start = writes["writes_to_start_per_prediction"]
    raw = {
        "creates_per_second": (raw_before["creates_per_second"] + raw_after["creates_per_second"]) / 2,
        "before": raw_before,
        "after": raw_after,
    }
    limit = raw["creates_per_second"] / writes_to_start if writes_to_start else None
    limit_whole_life = raw["creates_per_second"] / (1 + writes["operator_writes_per_prediction"])
    limit_all_users = raw["creates_per_second"] / writes["all_users_writes_per_prediction"]
    apply_to_job = [jobs_added[n] - created[n] for n in names]
    complete_to_succeeded = [succeeded[n] - jobs_complete[n] for n in names if n in jobs_complete]

    figures = {
        "date": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {
            "predictions": PREDICTIONS,
            "raw_jobs": RAW_JOBS,
            "threads": THREADS,
            "timeout_s": TIMEOUT,
            "namespace": namespace,
            "operator_log": str(operator.log_path),
        },
        "raw": raw,
        "predictions": {
            "apply_seconds": t_created - t0,
            "apply_rate_per_second": apply_rate,
            "started_rate_per_second": started_rate,
            "started_rate_steady_per_second": started_steady,
            "limit_per_second": limit,
            "limit_whole_life_per_second": limit_whole_life,
            "limit_all_users_per_second": limit_all_users,
            "started_over_limit_all_users": started_rate / limit_all_users,
            "create_call_seconds": summary(create_durations),
            "started_over_limit": started_rate / limit if limit else None,
            "started_over_apply_rate": started_rate / apply_rate,
            "started_steady_over_limit": started_steady / limit if (limit and started_steady) else None,
            "apply_to_job_seconds": summary(apply_to_job),
            "job_complete_to_succeeded_seconds": summary(complete_to_succeeded),
            "total_wall_seconds": t_all - t0,
            "late_operator_writes_after_last_succeeded": late_writes,
            "seen_first_by_relist": {f"{k}:{e}": c for (k, e), c in recorder.via_list.items()},
            "recorder_errors": recorder.errors,
            "operator_start_to_cache_ready_seconds": operator_to_cache_ready,
        },
        "cpu": cpu,
        "status_sequences": [
            {"count": c, "sequence": " -> ".join(seq)}
            for seq, c in Counter(tuple(recorder.sequences.get(n, [])) for n in names).most_common(6)
        ],
        "other_operator_pids_seen": sorted(others_seen),
        "foreign_writes_accepted": sum(
            v for k, v in writes["foreign_operator_breakdown"].items() if not k.endswith("403")
        ),
        "writes": writes,
    }
    out = RESULTS_DIR / f"prediction-throughput-{stamp}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    report(figures, out)


def report(f: dict, out: Path) -> None:
    raw, p, w = f["raw"], f["predictions"], f["writes"]
    a2j, c2s = p["apply_to_job_seconds"], p["job_complete_to_succeeded_seconds"]
    lines = [
        "",
        f"=== prediction throughput: {f['config']['predictions']} predictions, {f['config']['threads']} threads, "
        f"{f['machine']['cpus']} CPUs, {f['date']} ===",
        f"raw write rate            {raw['creates_per_second']:8.1f} creates/s  (mean of before {raw['before']['creates_per_second']:.1f} "
        f"and after {raw['after']['creates_per_second']:.1f}; {raw['before']['jobs']} suspended Jobs each)",
        f"writes to start one       {w['writes_to_start_per_prediction'] or 0:8.2f}            (client create + operator writes up to its first status write after the Job)",
        f"limit                     {p['limit_per_second'] or 0:8.1f} predictions/s (raw rate / writes to start; "
        f"{p['limit_whole_life_per_second']:.1f}/s with the whole-life writes)",
        f"limit, all users' writes  {p['limit_all_users_per_second']:8.1f} predictions/s (raw rate / every writer's writes per prediction; "
        f"started / this: {p['started_over_limit_all_users']:.2f})",
        f"apply rate (client)       {p['apply_rate_per_second']:8.1f} creates/s  ({p['apply_seconds']:.2f} s for all)",
        f"create call latency       raw Jobs p50 {fmt_s(raw['before']['create_call_seconds']['p50'])}, "
        f"p99 {fmt_s(raw['before']['create_call_seconds']['p99'])}; "
        f"predictions p50 {fmt_s(p['create_call_seconds']['p50'])}, p99 {fmt_s(p['create_call_seconds']['p99'])}",
        f"started rate              {p['started_rate_per_second']:8.1f} Jobs/s     (first create call -> last Job ADDED)",
        f"started rate, steady      {p['started_rate_steady_per_second'] or 0:8.1f} Jobs/s     (10th..90th percentile Job)",
        f"started / limit           {p['started_over_limit'] or 0:8.2f}            (goal >= 0.7; steady: {p['started_steady_over_limit'] or 0:.2f})",
        f"started / apply rate      {p['started_over_apply_rate']:8.2f}            (1.0: the operator keeps pace with the client)",
        f"apply -> Job ADDED        p50 {fmt_s(a2j['p50'])}, p99 {fmt_s(a2j['p99'])}, max {fmt_s(a2j['max'])}  (goal p99 < 1 s)",
        f"Job Complete -> Succeeded p50 {fmt_s(c2s['p50'])}, p99 {fmt_s(c2s['p99'])}, max {fmt_s(c2s['max'])}  (n={c2s['n']})",
        f"all Succeeded after       {p['total_wall_seconds']:8.1f} s",
        f"operator start -> cache Ready {p['operator_start_to_cache_ready_seconds']:6.1f} s",
        f"operator writes/prediction {w['operator_writes_per_prediction']:7.2f}            (goal <= 5; distribution {w['per_prediction_distribution']})",
        f"  status patches/prediction distribution: {w['status_patches_per_prediction_distribution']}",
        "  breakdown (all predictions):",
        *[f"    {k:55s} {v:6d}  ({v / f['config']['predictions']:.2f}/prediction)" for k, v in w["breakdown"].items()],
        f"  status codes: {w['status_codes']} (409 conflicts: {w['conflicts_409']})",
        f"  late writes (after the last Succeeded was seen): {p['late_operator_writes_after_last_succeeded']}",
        f"model cache operator writes ({w['model_cache_operator_writes_total']}): {w['model_cache_operator_writes']}",
        f"all users' writes/prediction {w['all_users_writes_per_prediction']:.2f}: "
        + ", ".join(f"{u} {c:.2f}" for u, c in w["all_users_breakdown_per_prediction"].items())
        + f" ({w['all_users_unnamed_creates']} unnamed creates counted: the Jobs' pods, by generateName)",
    ]
    cpu = f["cpu"]
    lines.append(
        f"CPU from first create to last Succeeded ({cpu['wall_seconds']:.0f} s, {cpu['cores']} cores: "
        f"{cpu['machine_busy_cpu_seconds'] / cpu['wall_seconds']:.2f} cores busy): "
        + ", ".join(
            f"{name} {sec / cpu['wall_seconds']:.2f}"
            for name, sec in sorted(cpu["cpu_seconds"].items(), key=lambda kv: -kv[1])
        )
        + f", everything else {cpu['others_cpu_seconds'] / cpu['wall_seconds']:.2f} (cores)"
    )
    lines.append(
        "status as the watch saw it change (most common sequences; c=condition types' initials, a=attempts, s=startTime):"
    )
    lines += [f"  {s['count']:4d} x {s['sequence']}" for s in f["status_sequences"]]
    if w["foreign_operator_writes"]:
        lines.append(
            f"other operator processes (other sessions, -A) tried {w['foreign_operator_writes']} writes in the bench "
            f"namespace (refused by the bench's admission policy): {w['foreign_operator_breakdown']}"
        )
    if f["other_operator_pids_seen"]:
        lines.append(
            f"note: other operator processes ran during the run (pids {f['other_operator_pids_seen']}): "
            "their load is in the timings"
        )
    if p["recorder_errors"]:
        lines.append(
            f"note: the watch recorder restarted {len(p['recorder_errors'])} times: {p['recorder_errors'][:3]}"
        )
    lines.append(f"figures written to {out}")
    print("\n".join(lines))

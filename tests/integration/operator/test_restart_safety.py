"""An operator killed at any moment and restarted creates no duplicate and loses no result."""

from __future__ import annotations

import os
import random
import time

import pytest

from support.manifests import as_input, model_cache, played, predict_ok, prediction
from support.wait import wait_until

pytestmark = pytest.mark.cluster

BATCH = 20
KILLS = 4


def test_sigkill_during_a_batch_loses_nothing_and_duplicates_nothing(cluster, namespace, operator):
    seed = int(os.environ.get("BOLTZ_TEST_SEED", time.time()))
    rng = random.Random(seed)
    print(f"seed={seed} (BOLTZ_TEST_SEED reproduces the kill timings)")

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))
    names = [f"p{i:02d}" for i in range(BATCH)]
    uris = {name: f"s3://results/{namespace}/{name}" for name in names}
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            *[
                prediction(
                    name, pod_metadata=played(predict_ok(uris[name]), run_duration=f"{rng.randint(200, 3000)}ms")
                )
                for name in names
            ]
        ),
    )

    for _ in range(KILLS):
        # Kill while the batch is in flight, at a random point of a pass.
        time.sleep(rng.uniform(0.05, 1.5))  # the kill timing itself, not a wait for a condition
        operator.kill()
        operator.start()

    def all_succeeded():
        items = cluster.kubectl_json("get", "boltzpredictions", "-n", namespace)["items"]
        return (
            items
            if len(items) == BATCH and all((p.get("status") or {}).get("phase") == "Succeeded" for p in items)
            else None
        )

    predictions = wait_until(all_succeeded, timeout=240, what=f"all {BATCH} predictions Succeeded")

    assert {p["metadata"]["name"]: p["status"]["results"]["uri"] for p in predictions} == uris
    jobs = cluster.kubectl_json("get", "jobs", "-n", namespace, "-l", "app.kubernetes.io/component=predict")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == sorted(f"{n}-predict" for n in names)
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=predict")["items"]
    assert len(pods) == BATCH, "each prediction ran exactly once"
    configmaps = cluster.kubectl_json(
        "get", "configmaps", "-n", namespace, "-l", "app.kubernetes.io/component=predict"
    )["items"]
    assert len(configmaps) == BATCH


def test_sigkill_during_screens_duplicates_no_job_and_reruns_no_finished_shard(cluster, namespace, operator):
    from test_screen_lifecycle import screen

    from boltz_contract import RunSummary
    from support.manifests import merge_played

    seed = int(os.environ.get("BOLTZ_TEST_SEED", time.time()))
    rng = random.Random(seed)
    print(f"seed={seed} (BOLTZ_TEST_SEED reproduces the kill timings)")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))
    names = [f"s{i}" for i in range(3)]

    def played_screen() -> dict:
        prepared = RunSummary(ok=True, ligands_total=9, ligands_failed=1, shards=4)
        ranked = RunSummary(ok=True, ligands_total=9, ligands_done=8, ligands_failed=1)
        return merge_played(
            played(prepared, only="screen-prepare", run_duration=f"{rng.randint(200, 1500)}ms"),
            *(played(RunSummary(ok=True, shard_index=i), only=f"index-{i}") for i in range(4)),
            played(run_duration=f"{rng.randint(200, 1500)}ms", only="screen-shard"),
            played(ranked, only="screen-rank"),
        )

    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-",
        input=as_input(*(screen(n, played_screen(), ligandsPerShard=2) for n in names)),
    )  # fmt: skip
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.05, 1.5))  # the kill timing itself, not a wait for a condition
        operator.kill()
        operator.start()

    def all_succeeded():
        items = cluster.kubectl_json("get", "boltzscreens", "-n", namespace)["items"]
        done = [s for s in items if (s.get("status") or {}).get("phase") == "Succeeded"]
        if len(done) == len(names):
            return items
        # Not yet: raising keeps the phases and conditions for the timeout's message.
        raise AssertionError({s["metadata"]["name"]: s.get("status") for s in items})

    wait_until(all_succeeded, timeout=240, what="all screens Succeeded")
    jobs = cluster.kubectl_json("get", "jobs", "-n", namespace)["items"]
    assert sorted(j["metadata"]["name"] for j in jobs if not j["metadata"]["name"].startswith("default-")) == sorted(
        f"{n}-{suffix}" for n in names for suffix in ("rank", "screen", "screenprep")
    )
    shard_pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=screen-shard")[
        "items"
    ]
    assert len(shard_pods) == 4 * len(names), "each shard of each screen ran exactly once"

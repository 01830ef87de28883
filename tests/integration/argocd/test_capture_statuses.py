"""Argo CD health of REAL objects: BoltzModelCache and BoltzPrediction driven through their phases by the operator
on the local control plane (kwok plays the worker pods), each judged by the Lua health check in argocd/health/,
run in-process in Argo CD's sandbox (argocd/lua_health.py, lupa's Lua 5.1).

Every captured object is also a checked-in fixture (tests/unit/argocd/fixtures/<name>.json, managedFields
dropped) that the unit tests judge without a cluster. This test checks that each fixture still matches what the
operator writes now (phase, condition types/statuses/reasons, and the health status); after a change to the
operator's statuses, rewrite the fixtures from a run with

    BOLTZ_CAPTURE_ARGOCD_FIXTURES=1 .venv/bin/pytest tests/integration/argocd

and then update the expected messages in tests/unit/argocd/test_health.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from boltz_contract import EXIT_CODE_OF, ErrorClass
from support.argocd import lua_health
from support.manifests import (
    as_input,
    campaign,
    failure,
    filter_ok,
    merge_played,
    model_cache,
    played,
    populate_ok,
    predict_ok,
    prediction,
    shard_ok,
)
from support.wait import wait_until

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "unit" / "argocd" / "fixtures"
UPDATE_FIXTURES = os.environ.get("BOLTZ_CAPTURE_ARGOCD_FIXTURES") == "1"


# ------------------------------------------------------------------------------------------------ helpers


def create(cluster, namespace: str, obj: dict) -> dict:
    """`kubectl create -o json`: the object exactly as the apiserver stored it, before the operator saw it."""
    return json.loads(cluster.kubectl("create", "-n", namespace, "-o", "json", "-f", "-", input=as_input(obj)).stdout)


def get(cluster, kind: str, name: str, namespace: str) -> dict:
    return cluster.kubectl_json("get", kind, name, "-n", namespace)


def condition(obj: dict, type_: str) -> dict:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), {})


def wait_for(cluster, kind: str, name: str, namespace: str, check, what: str, timeout: float = 240) -> dict:
    def seen():
        obj = get(cluster, kind, name, namespace)
        return obj if check(obj) else None

    return wait_until(seen, timeout=timeout, what=f"{kind}/{name}: {what}")


def phase_is(*phases: str):
    return lambda obj: (obj.get("status") or {}).get("phase") in phases


def slim(obj: dict) -> dict:
    """The object as a small fixture: no managedFields, no last-applied copy of the spec."""
    obj = json.loads(json.dumps(obj))
    meta = obj["metadata"]
    meta.pop("managedFields", None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    return obj


READ_CONDITIONS = ("ModelCacheReady", "Failed")  # the conditions the health checks look at


def shape(obj: dict) -> dict:
    """What a fixture must keep in common with a fresh capture: everything the health checks read, except the
    messages (timestamps, namespaces and the Job's progress make those differ from run to run)."""
    status = obj.get("status") or {}
    return {
        "kind": obj["kind"],
        "status": bool(status),
        "phase": status.get("phase"),
        "stale": status.get("observedGeneration") is not None
        and status["observedGeneration"] < obj["metadata"]["generation"],
        "conditions": sorted(
            (c["type"], c["status"], c["reason"]) for c in status.get("conditions", []) if c["type"] in READ_CONDITIONS
        ),
    }


def capture(name: str, obj: dict, expected_status: str) -> dict:
    """Judge a real object by its Argo CD health check; keep it as (or compare it with) fixture `name`."""
    health = lua_health.health_of(obj)
    assert health["status"] == expected_status, f"{name}: {health} for status {json.dumps(obj.get('status'))}"
    fixture = FIXTURES / f"{name}.json"
    if UPDATE_FIXTURES:
        FIXTURES.mkdir(parents=True, exist_ok=True)
        fixture.write_text(json.dumps(slim(obj), indent=2) + "\n")
    else:
        assert fixture.is_file(), f"no fixture {fixture.name}: run with BOLTZ_CAPTURE_ARGOCD_FIXTURES=1"
        kept = json.loads(fixture.read_text())
        assert shape(kept) == shape(obj), f"{fixture.name} no longer matches the operator: re-capture it"
        assert lua_health.health_of(kept)["status"] == health["status"]
    return health


# ------------------------------------------------------------------------------------------------ scenarios


def test_a_cache_and_a_prediction_that_succeed(cluster, namespace, operator):
    # Both pods run 15 s, so every phase on the way is observed, even with a busy shared control plane.
    cache = create(cluster, namespace, model_cache(pod_metadata=played(populate_ok(), run_duration="15s")))
    health = capture("modelcache-no-status", cache, "Progressing")
    assert "status" not in cache and health["message"] == "waiting for the operator: no status yet"

    pred = create(
        cluster,
        namespace,
        prediction("egfr", pod_metadata=played(predict_ok("s3://results/boltz/egfr"), run_duration="15s")),
    )
    capture("prediction-no-status", pred, "Progressing")

    waiting = wait_for(
        cluster, "boltzprediction", "egfr", namespace, phase_is("WaitingForModelCache"), "waiting for the cache"
    )
    assert condition(waiting, "ModelCacheReady")["reason"] == "ModelCacheNotReady"
    health = capture("prediction-waiting-cache-not-ready", waiting, "Progressing")
    assert health["message"] == f"WaitingForModelCache: {waiting['status']['message']}"

    populating = wait_for(cluster, "boltzmodelcache", "default", namespace, phase_is("Populating"), "Populating")
    capture("modelcache-populating", populating, "Progressing")

    ready = wait_for(cluster, "boltzmodelcache", "default", namespace, phase_is("Ready"), "Ready")
    health = capture("modelcache-ready", ready, "Healthy")
    assert health["message"] == ready["status"]["message"]

    running = wait_for(cluster, "boltzprediction", "egfr", namespace, phase_is("Running"), "Running")
    assert health_is(running, "Progressing", "Running: running boltz predict")
    capture("prediction-running", running, "Progressing")

    done = wait_for(cluster, "boltzprediction", "egfr", namespace, phase_is("Succeeded"), "Succeeded")
    health = capture("prediction-succeeded", done, "Healthy")
    assert health["message"] == "prediction complete; results: s3://results/boltz/egfr"

    # A scheduling field changes (Argo CD syncs a new spec.retries): the patch response is the object before the
    # operator has looked at it, so its status is for the previous generation.
    patched = json.loads(
        cluster.kubectl(
            "patch",
            "boltzprediction",
            "egfr",
            "-n",
            namespace,
            "--type=merge",
            "-o",
            "json",
            "-p",
            json.dumps({"spec": {"retries": 5}}),
        ).stdout
    )
    assert patched["metadata"]["generation"] == 2 and patched["status"]["observedGeneration"] == 1
    health = capture("prediction-succeeded-spec-changed", patched, "Progressing")
    assert health["message"] == "waiting for the operator to observe generation 2 (status is for generation 1)"
    again = wait_for(
        cluster,
        "boltzprediction",
        "egfr",
        namespace,
        lambda o: o["status"].get("observedGeneration") == 2,
        "observedGeneration 2",
    )
    assert health_is(again, "Healthy", "prediction complete; results: s3://results/boltz/egfr"), (
        "a finished run keeps its result"
    )

    # A cache spec change runs a new populate Job: Progressing until it is Ready again.
    patched = json.loads(
        cluster.kubectl(
            "patch",
            "boltzmodelcache",
            "default",
            "-n",
            namespace,
            "--type=merge",
            "-o",
            "json",
            "-p",
            json.dumps({"spec": {"populateJob": {"backoffLimit": 4}}}),
        ).stdout
    )
    capture("modelcache-spec-changed", patched, "Progressing")
    wait_for(
        cluster,
        "boltzmodelcache",
        "default",
        namespace,
        lambda o: o["status"].get("observedGeneration") == 2 and health_is(o, "Healthy"),
        "Ready at generation 2",
    )


def test_a_prediction_whose_worker_fails_with_exit_code_10(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    summary, code = failure(ErrorClass.INVALID_INPUT, "Failed to process bad.yaml: invalid SMILES 'C1CC'")
    assert code == int(EXIT_CODE_OF[ErrorClass.INVALID_INPUT]) == 10
    create(cluster, namespace, prediction("bad", pod_metadata=played(summary, exit_code=code)))

    failed = wait_for(cluster, "boltzprediction", "bad", namespace, phase_is("Failed"), "Failed")
    assert condition(failed, "Failed")["reason"] == "InvalidInput"
    health = capture("prediction-failed-invalid-input", failed, "Degraded")
    assert health["message"] == failed["status"]["message"] == "Failed to process bad.yaml: invalid SMILES 'C1CC'"


def test_a_prediction_waiting_for_a_missing_cache(cluster, namespace, operator):
    create(cluster, namespace, prediction("orphan"))
    waiting = wait_for(cluster, "boltzprediction", "orphan", namespace, phase_is("WaitingForModelCache"), "waiting")
    assert condition(waiting, "ModelCacheReady")["reason"] == "ModelCacheNotFound"
    health = capture("prediction-waiting-cache-not-found", waiting, "Progressing")
    assert health["message"].startswith("WaitingForModelCache: model cache 'default' not found in this namespace")


def test_a_failed_cache_and_the_prediction_it_blocks(cluster, namespace, operator):
    summary, code = failure(ErrorClass.CHECKSUM_MISMATCH, "boltz2/boltz2_conf.ckpt: sha256 0a1b... expected 9f8e...")
    create(cluster, namespace, model_cache(pod_metadata=played(summary, exit_code=code)))
    create(cluster, namespace, prediction("blocked"))

    cache = wait_for(cluster, "boltzmodelcache", "default", namespace, phase_is("Failed"), "Failed")
    health = capture("modelcache-failed", cache, "Degraded")
    assert health["message"] == cache["status"]["message"] == "boltz2/boltz2_conf.ckpt: sha256 0a1b... expected 9f8e..."

    blocked = wait_for(
        cluster,
        "boltzprediction",
        "blocked",
        namespace,
        lambda o: condition(o, "ModelCacheReady").get("reason") == "ModelCacheFailed",
        "to see the cache Failed",
    )
    assert blocked["status"]["phase"] == "WaitingForModelCache"
    health = capture("prediction-waiting-cache-failed", blocked, "Degraded")
    assert health["message"] == blocked["status"]["message"]
    assert health["message"].startswith("model cache 'default' is Failed: boltz2/boltz2_conf.ckpt: sha256")


def test_a_prediction_waiting_for_a_gpu_and_one_queued(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    # No node has this GPU product: the pod stays unschedulable, the Job has no ready pod.
    create(
        cluster,
        namespace,
        prediction("no-gpu", resources={"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-B300-not-here"}}),
    )
    pending = wait_for(cluster, "boltzprediction", "no-gpu", namespace, phase_is("Pending"), "Pending")
    health = capture("prediction-pending", pending, "Progressing")
    assert health["message"] == "Pending: waiting for a GPU"

    # What Kueue does to a workload it preempts (or has not admitted yet): it suspends the Job.
    create(cluster, namespace, prediction("preempted", pod_metadata=played(predict_ok("s3://r/p"), run_duration="1h")))
    wait_for(cluster, "boltzprediction", "preempted", namespace, phase_is("Running"), "Running")
    cluster.kubectl(
        "patch",
        "job",
        "preempted-predict",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": True}}),
    )
    queued = wait_for(cluster, "boltzprediction", "preempted", namespace, phase_is("Queued"), "Queued")
    health = capture("prediction-queued", queued, "Progressing")
    assert health["message"] == "Queued: the Job is suspended (queued, e.g. by Kueue)"


def test_a_cache_waiting_for_its_existing_claim(cluster, namespace, operator):
    cache = model_cache(name="adopted")
    cache["spec"]["storage"] = {"existingClaim": "weights-not-created-yet"}
    create(cluster, namespace, cache)
    pending = wait_for(cluster, "boltzmodelcache", "adopted", namespace, phase_is("Pending"), "Pending")
    assert condition(pending, "Ready")["reason"] == "ClaimNotFound"
    health = capture("modelcache-pending-claim-not-found", pending, "Progressing")
    assert health["message"].startswith("Pending: PVC 'weights-not-created-yet' (spec.storage.existingClaim) not found")


def test_a_campaign_through_its_phases(cluster, namespace, operator):
    # The cache holds only boltz2 at first: the campaign waits, and says what to fix.
    create(cluster, namespace, model_cache("boltzgen", bundles=["boltz2"]))
    pods = merge_played(
        *[played(shard_ok(i, 5), only=f"index-{i}", run_duration="6s") for i in range(2)],
        played(filter_ok([0, 1], 10, 3), only="filter"),
    )
    create(cluster, namespace, campaign("binder", pod_metadata=pods, numDesigns=10, budget=3, shards=2))
    lacking = wait_for(
        cluster,
        "boltzgencampaign",
        "binder",
        namespace,
        lambda o: condition(o, "ModelCacheReady").get("reason") == "ModelCacheLacksBundle",
        "lacking the bundle",
    )
    health = capture("campaign-waiting-cache-lacks-bundle", lacking, "Degraded")
    assert health["message"] == lacking["status"]["message"]

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache("boltzgen", bundles=["boltzgen"])))
    designing = wait_for(cluster, "boltzgencampaign", "binder", namespace, phase_is("Designing"), "Designing")
    health = capture("campaign-designing", designing, "Progressing")
    assert health["message"] == f"Designing: {designing['status']['message']}"

    done = wait_for(cluster, "boltzgencampaign", "binder", namespace, phase_is("Succeeded"), "Succeeded")
    health = capture("campaign-succeeded", done, "Healthy")
    assert health["message"] == "3 designs selected from 10 (shards merged: 2/2); 10 designs produced of 10 requested"


def test_a_campaign_with_too_many_failed_shards(cluster, namespace, operator):
    create(cluster, namespace, model_cache("boltzgen", bundles=["boltzgen"]))
    summary, code = failure(ErrorClass.GPU_OUT_OF_MEMORY, "boltzgen run (shard 0): GPU out of memory")
    create(
        cluster,
        namespace,
        campaign(
            "binder",
            pod_metadata=played(summary, exit_code=code, only="index-0"),
            numDesigns=2,
            budget=1,
            shards=2,
            retriesPerShard=0,
        ),
    )
    failed = wait_for(cluster, "boltzgencampaign", "binder", namespace, phase_is("Failed"), "Failed")
    health = capture("campaign-failed", failed, "Degraded")
    assert health["message"] == failed["status"]["message"]
    assert "GPU out of memory" in health["message"]


# ------------------------------------------------------------------------------------------------ more helpers


def ready_cache(cluster, namespace: str) -> dict:
    create(cluster, namespace, model_cache())
    return wait_for(cluster, "boltzmodelcache", "default", namespace, phase_is("Ready"), "Ready")


def health_is(obj: dict, status: str, message: str | None = None) -> bool:
    health = lua_health.health_of(obj)
    return health["status"] == status and (message is None or health["message"] == message)

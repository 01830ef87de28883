"""BoltzModelCache and BoltzPrediction from `kubectl apply` to status, on the real control plane, with the
operator running under the chart's RBAC and kwok playing the worker pods."""

from __future__ import annotations

import json

import pytest

import boltz_contract as contract
from boltz_contract import ErrorClass
from support.manifests import (
    RESULTS_BUCKET_URI,
    as_input,
    failure,
    model_cache,
    played,
    predict_ok,
    prediction,
)
from support.wait import wait_until

pytestmark = pytest.mark.cluster


def get(cluster, kind: str, name: str, namespace: str) -> dict:
    return cluster.kubectl_json("get", kind, name, "-n", namespace)


def phase_is(cluster, kind: str, name: str, namespace: str, *phases: str):
    obj = get(cluster, kind, name, namespace)
    return obj if (obj.get("status") or {}).get("phase") in phases else None


def wait_phase(cluster, kind, name, namespace, *phases, timeout=60):
    return wait_until(
        lambda: phase_is(cluster, kind, name, namespace, *phases),
        timeout=timeout,
        what=f"{kind}/{name} in phase {' or '.join(phases)}",
    )


def jobs(cluster, namespace: str) -> list[dict]:
    return cluster.kubectl_json("get", "jobs", "-n", namespace)["items"]


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def ready_cache(cluster, namespace: str, **kwargs) -> dict:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache(**kwargs)))
    return wait_phase(cluster, "boltzmodelcache", kwargs.get("name", "default"), namespace, "Ready")


def test_happy_path_cache_then_prediction_then_results(cluster, namespace, operator):
    # The populate pod runs a while, so the prediction is seen waiting for the cache.
    from support.manifests import populate_ok

    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(model_cache(pod_metadata=played(populate_ok(), run_duration="3s"))),
    )
    uri_placeholder = "s3://results/boltz/run"
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("egfr", pod_metadata=played(predict_ok(uri_placeholder)))),
    )

    waiting = wait_phase(cluster, "boltzprediction", "egfr", namespace, "WaitingForModelCache")
    assert condition(waiting, "ModelCacheReady")["reason"] == "ModelCacheNotReady"
    assert not [j for j in jobs(cluster, namespace) if j["metadata"]["name"] == "egfr-predict"], (
        "no GPU Job before the cache is Ready"
    )

    cache = wait_phase(cluster, "boltzmodelcache", "default", namespace, "Ready")
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace) if "populate" in j["metadata"]["name"]] == [
        "default-populate-1"
    ]
    assert cache["status"]["totalBytes"] == 2_300_000_000 + 1_800_000_000 + 90_000_000
    assert {f["path"] for f in cache["status"]["files"]} == {
        "boltz2/boltz2_conf.ckpt",
        "boltz2/boltz2_aff.ckpt",
        "boltz2/mols.tar",
    }
    assert cache["status"]["populateDurationSeconds"] == 42.5
    pvc = get(cluster, "pvc", "default-models", namespace)
    assert pvc["status"]["phase"] == "Bound"
    assert not pvc["metadata"].get("ownerReferences"), "the weights outlive the cache resource by default"

    done = wait_phase(cluster, "boltzprediction", "egfr", namespace, "Succeeded")
    results = done["status"]["results"]
    assert results["uri"] == uri_placeholder
    assert results["structures"] == [f"{uri_placeholder}/prediction_model_0.cif"]
    assert results["confidenceScore"] == 0.91 and results["affinityPredValue"] == -1.25
    assert condition(done, "Complete")["status"] == "True"
    assert all(c["observedGeneration"] == done["metadata"]["generation"] for c in done["status"]["conditions"])

    job = get(cluster, "job", "egfr-predict", namespace)
    check_prediction_job(job, done, cluster, namespace)


def check_prediction_job(job: dict, pred: dict, cluster, namespace: str) -> None:
    spec = job["spec"]
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert job["metadata"]["ownerReferences"][0]["uid"] == pred["metadata"]["uid"]
    assert container["command"] == ["boltz-worker", "predict"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/models"]["readOnly"] is True
    assert volumes[mounts["/models"]["name"]]["persistentVolumeClaim"] == {
        "claimName": "default-models",
        "readOnly": True,
    }
    assert mounts["/etc/boltz-run"]["readOnly"] is True
    assert "emptyDir" in volumes[mounts["/work"]["name"]]
    env = {e["name"]: e for e in container["env"]}
    assert env["BOLTZ_CACHE"]["value"] == "/models/boltz2"
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    assert env["HOME"]["value"].startswith("/work/")
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "results-s3", "key": "AWS_ACCESS_KEY_ID"}
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob"
    assert sorted(rules[1]["onExitCodes"]["values"]) == sorted([*(int(c) for c in contract.FAIL_FAST_EXIT_CODES), 137])
    assert spec["activeDeadlineSeconds"] == 3600 and spec["backoffLimit"] == 2
    assert spec["ttlSecondsAfterFinished"] > 0

    run_config = get(cluster, "configmap", "egfr-predict-run", namespace)
    run = contract.RUN_ADAPTER.validate_json(run_config["data"][contract.RUN_FILE])
    assert run.kind == "predict" and run.record_id == "egfr" and run.affinity_binder == "B"
    assert run.results.uri == f"{RESULTS_BUCKET_URI}/{namespace}/egfr/{pred['metadata']['uid']}"
    assert run.results.s3.endpoint_url == "http://s3.example:8333"
    boltz_yaml = run_config["data"][run.input_file]
    assert "properties:" in boltz_yaml and "binder: B" in boltz_yaml and "msa: empty" in boltz_yaml


def test_a_prediction_waits_for_a_missing_cache_and_starts_when_it_is_ready(cluster, namespace, operator):
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("waits", pod_metadata=played(predict_ok("s3://r/x")))),
    )
    waiting = wait_phase(cluster, "boltzprediction", "waits", namespace, "WaitingForModelCache")
    assert condition(waiting, "ModelCacheReady")["reason"] == "ModelCacheNotFound"
    assert "create a BoltzModelCache named 'default'" in waiting["status"]["message"]
    assert jobs(cluster, namespace) == []

    ready_cache(cluster, namespace)
    wait_phase(cluster, "boltzprediction", "waits", namespace, "Succeeded")


def test_a_failed_cache_says_why_and_the_prediction_keeps_waiting(cluster, namespace, operator):
    summary, code = failure(ErrorClass.CHECKSUM_MISMATCH, "boltz2/boltz2_conf.ckpt: sha256 abc... expected def...")
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(model_cache(pod_metadata=played(summary, exit_code=code)), prediction("blocked")),
    )

    cache = wait_phase(cluster, "boltzmodelcache", "default", namespace, "Failed")
    assert "sha256 abc" in cache["status"]["message"]
    assert (
        len(
            cluster.kubectl_json(
                "get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=default-populate-1"
            )["items"]
        )
        == 1
    )
    pred = wait_until(
        lambda: (
            (p := get(cluster, "boltzprediction", "blocked", namespace))
            and (condition(p, "ModelCacheReady") or {}).get("reason") == "ModelCacheFailed"
            and p
        ),
        timeout=60,
        what="the prediction to see the cache Failed",
    )
    assert "model cache 'default' is Failed" in pred["status"]["message"]
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace)] == ["default-populate-1"]


@pytest.mark.parametrize(
    ("error_class", "message"),
    [
        (ErrorClass.INVALID_INPUT, "Failed to process egfr.yaml: invalid SMILES"),
        (
            ErrorClass.GPU_OUT_OF_MEMORY,
            "CUDA out of memory with 5 diffusion samples; try fewer diffusionSamples or a larger GPU",
        ),
        (ErrorClass.MODEL_CACHE_UNUSABLE, "model cache at /models/boltz2 is missing boltz2_aff.ckpt"),
    ],
)
def test_errors_a_retry_cannot_fix_fail_at_once_with_the_workers_message(
    cluster, namespace, operator, error_class, message
):
    ready_cache(cluster, namespace)
    summary, code = failure(error_class, message)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("bad", pod_metadata=played(summary, exit_code=code))),
    )

    failed = wait_phase(cluster, "boltzprediction", "bad", namespace, "Failed")
    assert failed["status"]["message"] == message
    assert condition(failed, "Failed")["reason"] == error_class.value
    assert failed["status"]["attempts"] == 1
    events = cluster.kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=bad")[
        "items"
    ]
    assert any(e["type"] == "Warning" and e["reason"] == error_class.value for e in events)


def test_retryable_errors_are_retried_then_fail_with_the_count(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    summary, code = failure(ErrorClass.GPU_DEVICE_ERROR, "CUDA error: an illegal memory access (Xid 79)")
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("flaky", pod_metadata=played(summary, exit_code=code), retries=1)),
    )

    failed = wait_phase(cluster, "boltzprediction", "flaky", namespace, "Failed", timeout=120)
    assert (
        failed["status"]["message"]
        == "failed after 2 attempts; last error: CUDA error: an illegal memory access (Xid 79)"
    )
    assert failed["status"]["attempts"] == 2


def test_a_run_past_its_timeout_is_stopped(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("slow", pod_metadata=played(run_duration="1h"), timeoutSeconds=60)),
    )
    failed = wait_phase(cluster, "boltzprediction", "slow", namespace, "Failed", timeout=150)
    assert condition(failed, "Failed")["reason"] == "Timeout"
    assert "timed out after 60s" in failed["status"]["message"]


def test_an_evicted_prediction_pod_is_not_a_failure(cluster, namespace, operator):
    from kubernetes import client

    ready_cache(cluster, namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            prediction("evicted", pod_metadata=played(predict_ok("s3://r/e"), run_duration="3s"), retries=0)
        ),
    )
    wait_phase(cluster, "boltzprediction", "evicted", namespace, "Running")
    [pod] = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=evicted-predict")[
        "items"
    ]
    client.CoreV1Api(cluster.api_client()).create_namespaced_pod_eviction(
        pod["metadata"]["name"],
        namespace,
        client.V1Eviction(metadata=client.V1ObjectMeta(name=pod["metadata"]["name"], namespace=namespace)),
    )

    done = wait_phase(cluster, "boltzprediction", "evicted", namespace, "Succeeded", timeout=90)
    assert get(cluster, "job", "evicted-predict", namespace)["status"].get("failed", 0) == 0
    assert done["status"]["results"]["uri"] == "s3://r/e"


def test_inputs_only_the_operator_can_judge_fail_without_a_job(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    big_ligand = "C" * 140  # 140 heavy atoms: valid SMILES, too large for the affinity module
    pred = prediction(
        "huge",
        sequences=[
            {"protein": {"ids": ["A"], "sequence": "MKTAYIAKQR", "msa": {"empty": True}}},
            {"ligand": {"ids": ["B"], "smiles": big_ligand}},
        ],
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(pred))

    failed = wait_phase(cluster, "boltzprediction", "huge", namespace, "Failed")
    assert "ligand B has 140 heavy atoms; affinity supports at most 128" in failed["status"]["message"]
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace)] == ["default-populate-1"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sequences": [{"ligand": {"ids": ["B"], "smiles": "CCO", "ccd": "ATP"}}]}, "exactly one of smiles, ccd"),
        ({"affinity": {"binder": "A"}}, "ligand"),
        (
            {
                "sequences": [
                    {"protein": {"ids": ["A"], "sequence": "MKT"}},
                    {"ligand": {"ids": ["A"], "smiles": "CCO"}},
                ]
            },
            "unique",
        ),
    ],
)
def test_invalid_specs_are_rejected_at_apply(cluster, namespace, operator, change, expected):
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=as_input(prediction("rejected", **change)), check=False
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert cluster.kubectl("get", "boltzprediction", "rejected", "-n", namespace, check=False).returncode != 0


def test_the_run_inputs_are_immutable_after_creation(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(prediction("fixed", pod_metadata=played(predict_ok("s3://r/f")))),
    )
    wait_phase(cluster, "boltzprediction", "fixed", namespace, "Succeeded")
    result = cluster.kubectl(
        "patch",
        "boltzprediction",
        "fixed",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"options": {"diffusionSamples": 5}}}),
        check=False,
    )
    assert result.returncode != 0 and "immutable" in result.stderr
    # Scheduling fields may change; a finished prediction is not re-run by them.
    cluster.kubectl(
        "patch", "boltzprediction", "fixed", "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"retries": 5}})
    )
    assert wait_until(
        lambda: get(cluster, "boltzprediction", "fixed", namespace)["metadata"]["generation"] == 2, timeout=10
    )
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace) if "predict" in j["metadata"]["name"]] == [
        "fixed-predict"
    ]


def test_deleting_a_cache_keeps_its_volume_unless_asked(cluster, namespace, operator):
    kept = model_cache(name="kept")
    dropped = model_cache(name="dropped")
    dropped["spec"]["retainVolumeOnDelete"] = False
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(kept, dropped))
    for name in ("kept", "dropped"):
        wait_phase(cluster, "boltzmodelcache", name, namespace, "Ready")

    cluster.kubectl("delete", "boltzmodelcache", "kept", "dropped", "-n", namespace, "--wait=true")

    wait_until(
        lambda: cluster.kubectl("get", "pvc", "dropped-models", "-n", namespace, check=False).returncode != 0,
        timeout=60,
        what="the garbage collector to delete dropped-models",
    )
    assert get(cluster, "pvc", "kept-models", namespace)["status"]["phase"] == "Bound"

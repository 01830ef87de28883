"""BoltzGenCampaign from `kubectl apply` to status, on the real control plane, with the operator under the chart's
RBAC and kwok playing the shard and filter pods (per index, through `played(..., only=...)`)."""

from __future__ import annotations

import pytest

import boltz_contract as contract
from boltz_contract import ErrorClass
from support.manifests import (
    RESULTS_BUCKET_URI,
    as_input,
    campaign,
    failure,
    filter_ok,
    merge_played,
    model_cache,
    played,
    shard_ok,
)
from support.wait import wait_until

pytestmark = pytest.mark.cluster

CACHE = "boltzgen"


def get(cluster, kind: str, name: str, namespace: str) -> dict:
    return cluster.kubectl_json("get", kind, name, "-n", namespace)


def wait_phase(cluster, name: str, namespace: str, *phases: str, timeout: float = 90) -> dict:
    def reached():
        obj = get(cluster, "boltzgencampaign", name, namespace)
        return obj if (obj.get("status") or {}).get("phase") in phases else None

    return wait_until(reached, timeout=timeout, what=f"BoltzGenCampaign/{name} in phase {' or '.join(phases)}")


def job_names(cluster, namespace: str, component: str | None = None) -> list[str]:
    selector = (
        ["-l", f"app.kubernetes.io/component={component}"]
        if component
        else ["-l", "boltz-operator.io/owner-kind=BoltzGenCampaign"]
    )
    return sorted(
        j["metadata"]["name"] for j in cluster.kubectl_json("get", "jobs", "-n", namespace, *selector)["items"]
    )


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)


def events(cluster, namespace: str, name: str) -> list[dict]:
    items = cluster.kubectl_json("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return items


def ready_boltzgen_cache(cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache(CACHE, bundles=["boltzgen"])))
    wait_until(
        lambda: (get(cluster, "boltzmodelcache", CACHE, namespace).get("status") or {}).get("phase") == "Ready",
        timeout=60,
        what="the boltzgen model cache Ready",
    )


def shards_played(shards: int, designs_per_shard: int, run_duration: str | None = None) -> list[dict]:
    return [played(shard_ok(i, designs_per_shard), only=f"index-{i}", run_duration=run_duration) for i in range(shards)]


def test_campaign_runs_shards_then_one_filter_and_reports_the_top_designs(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    pods = merge_played(*shards_played(4, 25), played(filter_ok([0, 1, 2, 3], 100, 10), only="filter"))
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign("binder", pod_metadata=pods, numDesigns=100, budget=10, shards=4, parallelism=2, retriesPerShard=1)
        ),
    )

    done = wait_phase(cluster, "binder", namespace, "Succeeded")
    status = done["status"]

    # The design Job: one index per shard, retried per index, stopped once the threshold is out of reach.
    design = get(cluster, "job", "binder-design", namespace)
    spec = design["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 4, 2)
    assert spec["backoffLimitPerIndex"] == 1
    assert spec["maxFailedIndexes"] == 0  # minSuccessfulShardFraction 0.9 of 4 shards: all 4 needed
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert rules[1]["action"] == "FailJob" and rules[1]["onExitCodes"]["values"] == [10, 11, 15, 16]
    assert rules[2]["action"] == "FailIndex" and rules[2]["onExitCodes"]["values"] == [12, 17, 18, 137]
    pod = spec["template"]["spec"]
    worker = pod["containers"][0]
    assert worker["command"] == ["boltz-worker", "design"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in worker["env"]
    mounts = {m["mountPath"]: m for m in worker["volumeMounts"]}
    assert mounts[contract.MODELS_DIR]["readOnly"] is True and mounts[contract.CONFIG_DIR]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": f"{CACHE}-models", "readOnly": True}
    assert pod["automountServiceAccountToken"] is False
    # ... and the spec's target ConfigMap key, projected beside the rendered spec.
    projected = [s["configMap"] for s in volumes["run-config"]["projected"]["sources"]]
    assert {"name": "pdl1-target", "items": [{"key": "6m1u.cif", "path": "inputs/target-1.cif"}]} in projected

    # The filter Job starts only after every shard finished.
    filter_job = get(cluster, "job", "binder-filter", namespace)
    assert filter_job["spec"]["template"]["spec"]["containers"][0]["command"] == ["boltz-worker", "filter"]
    assert filter_job["metadata"]["creationTimestamp"] >= design["status"]["completionTime"]
    assert job_names(cluster, namespace) == ["binder-design", "binder-filter"]

    # One ConfigMap carries the spec and both runs; the runs say what the pods do.
    config = get(cluster, "configmap", "binder-campaign-run", namespace)["data"]
    design_run = contract.DesignRun.model_validate_json(config["design-run.json"])
    filter_run = contract.FilterRun.model_validate_json(config["filter-run.json"])
    assert (design_run.num_designs, design_run.extra_design_shards) == (25, 0)
    assert (filter_run.num_shards, filter_run.min_shards, filter_run.budget) == (4, 4, 10)
    assert "path: /etc/boltz-run/inputs/target-1.cif" in config["design-spec.yaml"]

    progress = status["progress"]
    assert progress == {
        "shardsTotal": 4,
        "shardsSucceeded": 4,
        "shardsFailed": 0,
        "shardsRunning": 0,
        "designsRequested": 100,
        "designsCompleted": 100,
        "designsProduced": 100,
        "designsSelected": 10,
    }
    assert status["shards"] == "4/4"
    results = status["results"]
    base = results["uri"]
    assert base.startswith(RESULTS_BUCKET_URI + f"/{namespace}/binder/")
    assert results["finalDesignsUri"] == f"{base}/final/final_ranked_designs/final_10_designs"
    assert results["metricsCsvUri"] == f"{base}/final/final_ranked_designs/all_designs_metrics.csv"
    assert [d["rank"] for d in results["topDesigns"]] == list(range(1, 11))
    assert results["topDesigns"][0]["metrics"]["design_to_target_iptm"] == 0.89
    assert status["estimate"]["gpuHours"] > 0 and "A10G" in status["estimate"]["basis"]
    for type_ in ("ModelCacheReady", "DesignJobCreated", "DesignsComplete", "FilterJobCreated", "Complete"):
        assert condition(done, type_)["status"] == "True", type_
    assert condition(done, "DesignsComplete")["reason"] == "AllShardsSucceeded"
    reasons = {e["reason"] for e in events(cluster, namespace, "binder")}
    assert {"DesignJobCreated", "FilterJobCreated"} <= reasons

    printed = cluster.kubectl("get", "boltzgencampaign", "binder", "-n", namespace).stdout
    assert "Succeeded" in printed and "4/4" in printed


def test_a_cache_without_the_boltzgen_bundle_keeps_the_campaign_waiting_with_the_fix(cluster, namespace, operator):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache(CACHE, bundles=["boltz2"])))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(campaign("binder", numDesigns=10, shards=2)))

    waiting = wait_phase(cluster, "binder", namespace, "WaitingForModelCache")
    assert condition(waiting, "ModelCacheReady")["reason"] == "ModelCacheLacksBundle"
    assert "add boltzgen to its spec.bundles" in waiting["status"]["message"]
    assert waiting["status"]["estimate"]["gpuHours"] > 0, "the estimate is there before any GPU is spent"

    # The fix: the cache gains the bundle, populates again, and the campaign starts on its own.
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=as_input(model_cache(CACHE, bundles=["boltz2", "boltzgen"]))
    )
    wait_phase(cluster, "binder", namespace, "Pending", "Designing", "Filtering", "Succeeded")
    assert "binder-design" in job_names(cluster, namespace)


def test_partial_failure_above_the_threshold_filters_the_successful_shards(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    crash, crash_code = failure(ErrorClass.INTERNAL, "boltzgen run (shard 1) exited with code 1: NaN in diffusion")
    oom, oom_code = failure(ErrorClass.GPU_OUT_OF_MEMORY, "boltzgen run (shard 3): GPU out of memory")
    pods = merge_played(
        *shards_played(5, 2),
        played(crash, exit_code=crash_code, only="index-1"),
        played(oom, exit_code=oom_code, only="index-3"),
        played(filter_ok([0, 2, 4], 6, 3), only="filter"),
    )
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign(
                "binder",
                pod_metadata=pods,
                numDesigns=10,
                budget=3,
                shards=5,
                retriesPerShard=1,
                minSuccessfulShardFraction=0.6,
            )
        ),
    )

    done = wait_phase(cluster, "binder", namespace, "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    designs_complete = condition(done, "DesignsComplete")
    assert designs_complete["reason"] == "PartialSuccess"
    assert "3/5 shards succeeded (2 failed; at least 3 needed)" in designs_complete["message"]
    assert (
        "shard 1: Internal: boltzgen run (shard 1) exited with code 1: NaN in diffusion" in designs_complete["message"]
    )
    assert "shard 3: GPUOutOfMemory: boltzgen run (shard 3): GPU out of memory" in designs_complete["message"]
    assert done["status"]["progress"]["shardsFailed"] == 2 and done["status"]["progress"]["designsCompleted"] == 6
    # Index 1 ran twice (retriesPerShard 1); index 3 once: out of GPU memory ends the shard without a retry.
    pods_of = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-design")[
        "items"
    ]
    per_index = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods_of)
    assert per_index == ["0", "1", "1", "2", "3", "4"]
    assert "PartialSuccess" in {e["reason"] for e in events(cluster, namespace, "binder")}


def test_too_many_failed_shards_fail_the_campaign_with_their_errors_and_no_filter(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    gpu, code = failure(ErrorClass.GPU_DEVICE_ERROR, "boltzgen run (shard 2): no usable CUDA device: Xid 79")
    pods = merge_played(*shards_played(4, 1), played(gpu, exit_code=code, only="index-2"))
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign(
                "binder",
                pod_metadata=pods,
                numDesigns=4,
                shards=4,
                budget=2,
                retriesPerShard=0,
                minSuccessfulShardFraction=1.0,
            )
        ),
    )

    failed = wait_phase(cluster, "binder", namespace, "Failed")
    message = failed["status"]["message"]
    assert condition(failed, "Failed")["reason"] == "TooManyShardsFailed"
    assert "1 of 4 shards failed" in message and "at least 4 needed" in message
    assert "shard 2: GPUDeviceError: boltzgen run (shard 2): no usable CUDA device: Xid 79" in message
    assert job_names(cluster, namespace) == ["binder-design"], "no filter Job for a failed campaign"


def test_invalid_input_found_by_a_shard_fails_the_whole_campaign_at_once(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    bad, code = failure(ErrorClass.INVALID_INPUT, "target-1.cif: chain A not found in the structure file")
    pods = merge_played(played(bad, exit_code=code, only="design", run_duration="200ms"))
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign("binder", pod_metadata=pods, numDesigns=20, shards=4, parallelism=1, retriesPerShard=3)
        ),
    )

    failed = wait_phase(cluster, "binder", namespace, "Failed")
    assert condition(failed, "Failed")["reason"] == "InvalidInput"
    assert "chain A not found in the structure file" in failed["status"]["message"]
    pods_of = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-design")[
        "items"
    ]
    assert len(pods_of) == 1, "FailJob: no retry, no further shard"
    assert job_names(cluster, namespace) == ["binder-design"]


def test_a_filter_failed_filter_fails_the_campaign_at_once_naming_the_cause(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    cause = (
        "boltzgen merge failed on the stored shard outputs (a retry would read the same files): FileNotFoundError: "
        "Required file missing during merge: /work/boltzgen-filter/shards/shard-00000/intermediate_designs/x_0.cif"
    )
    bad, code = failure(ErrorClass.FILTER_FAILED, cause)
    pods = merge_played(*shards_played(2, 2), played(bad, exit_code=code, only="filter"))
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(campaign("binder", pod_metadata=pods, numDesigns=4, shards=2, budget=2, retriesPerShard=3)),
    )

    failed = wait_phase(cluster, "binder", namespace, "Failed")
    assert condition(failed, "Failed")["reason"] == "FilterFailed"
    assert "filter Job failed" in failed["status"]["message"]
    assert "Required file missing during merge" in failed["status"]["message"]
    pods_of = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-filter")[
        "items"
    ]
    assert len(pods_of) == 1, "FailJob: a deterministic filter failure is not retried (retriesPerShard 3)"
    assert "FilterFailed" in {e["reason"] for e in events(cluster, namespace, "binder")}


def test_a_shard_out_of_host_memory_fails_its_index_only_and_counts_are_reported(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    short, code = failure(
        ErrorClass.HOST_OUT_OF_MEMORY,
        (
            "shard 1 produced 12 of 40 designs (at most 2 may be missing, 5%): boltzgen's analysis restarted its process "
            "pool 28 time(s) ... raise resources.memory, or lower resources.cpu"
        ),
    )
    done_summary = filter_ok([0, 2, 3], 118, 5).model_copy(update={"designs_duplicates_dropped": 3})
    pods = merge_played(
        *shards_played(4, 40), played(short, exit_code=code, only="index-1"), played(done_summary, only="filter")
    )
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign(
                "binder",
                pod_metadata=pods,
                numDesigns=80,
                shards=4,
                budget=5,
                retriesPerShard=2,
                minSuccessfulShardFraction=0.75,
                stepOptions={"inverseFoldNumSequences": 2},
            )
        ),
    )

    done = wait_phase(cluster, "binder", namespace, "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    message = condition(done, "DesignsComplete")["message"]
    assert "shard 1: HostOutOfMemory: shard 1 produced 12 of 40 designs" in message and "resources.memory" in message
    pods_of = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-design")[
        "items"
    ]
    per_index = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods_of)
    assert per_index == ["0", "1", "2", "3"], "FailIndex: no retry of a shard out of host memory (retriesPerShard 2)"
    progress = done["status"]["progress"]
    assert (progress["designsRequested"], progress["designsProduced"]) == (160, 118)  # 80 backbones x 2 sequences
    assert (progress["designsDroppedAsDuplicates"], progress["designsSelected"]) == (3, 5)
    assert "3 dropped as repeated sequences" in done["status"]["message"]


def test_memory_below_the_analysis_pool_warns_with_a_condition(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign("binder", numDesigns=4, shards=2, budget=2, resources={"gpus": 1, "cpu": "32", "memory": "16Gi"})
        ),
    )

    def warned():
        obj = get(cluster, "boltzgencampaign", "binder", namespace)
        found = condition(obj, "AnalysisMemory")
        return found if found and found["status"] == "False" else None

    found = wait_until(warned, timeout=60, what="the AnalysisMemory condition False")
    assert found["reason"] == "AnalysisMemoryShort"
    assert "resources.memory 16Gi" in found["message"] and "32 x about 1.3 GB = 41.6 GB (39Gi)" in found["message"]
    wait_until(
        lambda: "AnalysisMemoryShort" in {e["reason"] for e in events(cluster, namespace, "binder")},
        timeout=30,
        what="the AnalysisMemoryShort Event",
    )
    assert "binder-design" in job_names(cluster, namespace), "a warning: the campaign still runs"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "designSpec": {
                    "entities": [
                        {"protein": {"ids": ["B"], "sequence": "80..140"}},
                        {"file": {"configMapKeyRef": {"name": "t", "key": "../etc/passwd.cif"}}},
                    ]
                }
            },
            "must not contain '..'",
        ),
        ({"designSpec": {"entities": [{"file": {"s3": {"uri": "s3://b/target.txt"}}}]}}, "must be a .cif or .pdb file"),
        ({"numDesigns": 10, "budget": 50}, "budget must not exceed numDesigns"),
        ({"numDesigns": 10, "shards": 20}, "shards must not exceed numDesigns"),
        ({"shards": 4, "parallelism": 8}, "parallelism must not exceed shards"),
        ({"shards": "many"}, "shards must be an integer"),
        ({"protocol": "protein-everything"}, "Unsupported value"),
        # boltzgen takes `all` only in a file's bindingTypes and secondaryStructure
        (
            {
                "designSpec": {
                    "entities": [
                        {
                            "file": {
                                "configMapKeyRef": {"name": "t", "key": "t.cif"},
                                "include": [{"chain": {"id": "A", "resIndex": "all"}}],
                            }
                        }
                    ]
                }
            },
            "should match",
        ),
        (
            {
                "designSpec": {
                    "entities": [
                        {"protein": {"ids": ["A"], "sequence": "MKTAYIAKQR", "secondaryStructure": {"helix": "1..5"}}}
                    ]
                }
            },
            "secondaryStructure conditions designed residues: this chain has none",
        ),
        (
            {"designSpec": {"entities": [{"dna": {"ids": ["D"], "sequence": "ACGT", "cyclic": True}}]}},
            'unknown field "spec.designSpec.entities[0].dna.cyclic"',
        ),
        ({"minSuccessfulShardFraction": 0}, "minSuccessfulShardFraction"),
    ],
)
def test_invalid_specs_are_refused_at_apply(cluster, namespace, change, message):
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=as_input(campaign("bad", **change)), check=False
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert not cluster.kubectl_json("get", "boltzgencampaigns", "-n", namespace)["items"]


def test_run_inputs_are_immutable_once_created(cluster, namespace):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(campaign("binder", numDesigns=10, shards=2)))
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=as_input(campaign("binder", numDesigns=20, shards=2)), check=False
    )
    assert result.returncode != 0 and "create a new BoltzGenCampaign to re-run" in result.stderr
    # Scheduling fields may change.
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=as_input(campaign("binder", numDesigns=10, shards=2, parallelism=1))
    )


def test_an_operator_restarted_mid_campaign_reruns_no_shard_and_creates_no_duplicate(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    pods = merge_played(
        *shards_played(6, 2, run_duration="1500ms"), played(filter_ok(list(range(6)), 12, 4), only="filter")
    )
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(campaign("binder", pod_metadata=pods, numDesigns=12, budget=4, shards=6, parallelism=2)),
    )

    def shards_done(count: int):
        status = get(cluster, "boltzgencampaign", "binder", namespace).get("status") or {}
        return status if (status.get("progress") or {}).get("shardsSucceeded", 0) >= count else None

    wait_until(lambda: shards_done(2), timeout=60, what="2 shards done")
    operator.kill()
    # While it is down the design Job finishes on its own: the restarted operator must take it from there.
    wait_until(
        lambda: (get(cluster, "job", "binder-design", namespace).get("status") or {}).get("completionTime"),
        timeout=60,
        what="the design Job complete while the operator is down",
    )
    operator.start()
    wait_until(lambda: "binder-filter" in job_names(cluster, namespace), timeout=60, what="the filter Job")
    operator.kill()  # and once more while filtering
    operator.start()

    done = wait_phase(cluster, "binder", namespace, "Succeeded")
    assert done["status"]["progress"]["shardsSucceeded"] == 6
    assert job_names(cluster, namespace) == ["binder-design", "binder-filter"]
    design_pods = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-design"
    )["items"]
    assert len(design_pods) == 6, "every shard ran exactly once"
    filter_pods = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=binder-filter"
    )["items"]
    assert len(filter_pods) == 1
    configmaps = cluster.kubectl_json(
        "get", "configmaps", "-n", namespace, "-l", "boltz-operator.io/owner-kind=BoltzGenCampaign"
    )["items"]
    assert [c["metadata"]["name"] for c in configmaps] == ["binder-campaign-run"]


def test_a_campaign_waits_pending_while_no_gpu_fits_and_queued_while_suspended(cluster, namespace, operator):
    ready_boltzgen_cache(cluster, namespace)
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            campaign(
                "binder",
                numDesigns=4,
                shards=2,
                queueName="gpu-queue",
                resources={"gpus": 1, "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-B300-not-here"}},
            )
        ),
    )

    pending = wait_phase(cluster, "binder", namespace, "Pending")
    assert pending["status"]["message"] == "waiting for GPUs"
    design = get(cluster, "job", "binder-design", namespace)
    assert design["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"

    # What Kueue does to a workload it has not admitted: it suspends the Job.
    cluster.kubectl(
        "patch", "job", "binder-design", "-n", namespace, "--type=merge", "-p", '{"spec": {"suspend": true}}'
    )
    wait_until(
        lambda: (
            get(cluster, "boltzgencampaign", "binder", namespace)["status"]["message"]
            == "the design Job is suspended (queued, e.g. by Kueue)"
        ),
        timeout=60,
        what="the campaign to see the suspension",
    )
    assert job_names(cluster, namespace) == ["binder-design"]


def test_a_spec_only_the_operator_can_judge_fails_before_any_gpu_is_spent(cluster, namespace, operator):
    # A backwards length passes the CRD's pattern; boltzgen would fail on it on a GPU ("low >= high").
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache(CACHE, bundles=["boltzgen"])))
    bad = campaign("binder", numDesigns=4, shards=2)
    bad["spec"]["designSpec"]["entities"][0]["protein"]["sequence"] = "140..80"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(bad))

    failed = wait_phase(cluster, "binder", namespace, "Failed")
    assert condition(failed, "Failed")["reason"] == "InvalidSpec"
    assert "designSpec.entities.0.protein.sequence" in failed["status"]["message"]
    assert "'140..80' runs backwards" in failed["status"]["message"]
    assert job_names(cluster, namespace) == []

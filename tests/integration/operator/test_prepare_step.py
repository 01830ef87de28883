"""The CPU prepare Job before every prediction's GPU Job, and the MSA gate, on the real control plane: kwok plays
the prepare and GPU pods (tests/integration/fidelity runs the real `boltz-worker prepare`)."""

from __future__ import annotations

from datetime import datetime

import pytest
from test_prediction_lifecycle import condition, get, jobs, ready_cache, wait_phase

from boltz_contract import ErrorClass
from boltz_contract.msa import msa_key
from support.manifests import as_input, failure, merge_played, played, predict_ok, prediction, prepare_ok
from support.wait import wait_until

pytestmark = pytest.mark.cluster

SERVER = "https://msa.example.org"
KEY_ANNOTATION = "boltz-operator.io/msa"
EGFR = "GEAPNQALLRILKETEFKKIKVLGSGAFGTVYKGLWIPEGEKVKIPVAIKELREATSPKANKEILDEAYVMASVDNPHVCRLLGICLTSTVQ"


def server_msa_prediction(name: str, sequence: str = EGFR, prepare_source: str = "fetched", **kwargs) -> dict:
    """A protein whose MSA the server computes, a ligand; prepare played as reporting `prepare_source`."""
    return prediction(
        name,
        pod_metadata=kwargs.pop("pod_metadata", played(predict_ok(f"s3://r/{name}"))),
        prepare=kwargs.pop("prepare", played(prepare_ok(("A", prepare_source)), only="prepare", run_duration="2s")),
        sequences=[{"protein": {"ids": ["A"], "sequence": sequence}}, {"ligand": {"ids": ["B"], "smiles": "CCO"}}],
        msaServer={"url": SERVER},
        **kwargs,
    )


def apply(cluster, namespace: str, *objects: dict) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(*objects))


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_the_gpu_job_is_created_only_after_the_cpu_prepare_job_succeeded(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    apply(cluster, namespace, server_msa_prediction("egfr"))

    preparing = wait_phase(cluster, "boltzprediction", "egfr", namespace, "Preparing")
    assert condition(preparing, "Prepared")["status"] == "False"
    prepare = get(cluster, "job", "egfr-prepare", namespace)
    pod = prepare["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["boltz-worker", "prepare"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert not pod.get("tolerations"), "a prepare pod never lands on a GPU node"
    # No MSA store configured: the results store's msas/ prefix, per namespace.
    key = msa_key(SERVER, "greedy", [EGFR])
    assert prepare["metadata"]["annotations"][KEY_ANNOTATION] == f"s3://results/boltz/msas/{namespace}/{key}"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] is True

    done = wait_phase(cluster, "boltzprediction", "egfr", namespace, "Succeeded")
    assert done["status"]["msa"] == [{"chain": "A", "source": "fetched"}]
    assert condition(done, "Prepared")["status"] == "True"
    prepare = get(cluster, "job", "egfr-prepare", namespace)
    predict = get(cluster, "job", "egfr-predict", namespace)
    assert when(predict["metadata"]["creationTimestamp"]) >= when(prepare["status"]["completionTime"])
    [pod] = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "batch.kubernetes.io/job-name=egfr-prepare")[
        "items"
    ]
    assert pod["spec"]["nodeName"] == "kwok-cpu-0"


def test_input_prepare_refuses_fails_with_its_message_and_no_gpu_pod_ever_exists(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    message = "sequences[1] (ligand B): boltz could not parse the SMILES '[Xx]' with RDKit: ..."
    summary, code = failure(ErrorClass.INVALID_INPUT, message)
    apply(
        cluster,
        namespace,
        server_msa_prediction("refused", prepare=played(summary, exit_code=code, only="prepare")),
    )

    failed = wait_phase(cluster, "boltzprediction", "refused", namespace, "Failed")
    assert failed["status"]["message"] == f"prepare: {message} (no GPU was used)"
    assert condition(failed, "Prepared")["reason"] == "InvalidInput"
    names = [j["metadata"]["name"] for j in jobs(cluster, namespace)]
    assert "refused-prepare" in names and "refused-predict" not in names
    gpu_pods = [
        p
        for p in cluster.kubectl_json("get", "pods", "-n", namespace)["items"]
        if "nvidia.com/gpu" in (p["spec"]["containers"][0]["resources"].get("limits") or {})
    ]
    assert gpu_pods == []


def test_a_gpu_pod_killed_by_its_memory_limit_fails_at_once_naming_the_limit(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    oom = played(exit_code=137, reason="OOMKilled", only="predict")
    apply(cluster, namespace, prediction("oom", pod_metadata=merge_played(oom, played()), retries=2))

    failed = wait_phase(cluster, "boltzprediction", "oom", namespace, "Failed", timeout=90)
    assert condition(failed, "Failed")["reason"] == "MemoryLimitExceeded"
    assert failed["status"]["attempts"] == 1, "a memory-limit kill repeats: never retried"
    assert "killed by its memory limit of 64Gi" in failed["status"]["message"]
    assert "spec.resources.memory" in failed["status"]["message"]


def test_twenty_predictions_of_one_protein_make_one_fetching_prepare(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    names = [f"same-{i:02d}" for i in range(20)]
    apply(
        cluster,
        namespace,
        *(server_msa_prediction(n, prepare_source="fetched" if n == names[0] else "reused") for n in names),
    )

    def all_succeeded():
        items = cluster.kubectl_json("get", "boltzpredictions", "-n", namespace)["items"]
        phases = [(i.get("status") or {}).get("phase") for i in items]
        return items if phases.count("Succeeded") == len(names) else None

    wait_until(all_succeeded, timeout=180, what="20 predictions Succeeded")
    prepares = [j for j in jobs(cluster, namespace) if j["metadata"]["name"].endswith("-prepare")]
    assert len(prepares) == 20
    fetching = [j for j in prepares if KEY_ANNOTATION in (j["metadata"].get("annotations") or {})]
    # One prepare was allowed to call the server; every other one started after it had stored the MSA.
    assert len(fetching) == 1
    [first] = fetching
    stored_at = when(first["status"]["completionTime"])
    others = [j for j in prepares if j is not first]
    assert all(when(j["metadata"]["creationTimestamp"]) >= stored_at for j in others)


def test_at_most_max_concurrent_prepares_call_msa_servers_at_once(cluster, namespace, operator):
    ready_cache(cluster, namespace)
    sequences = [EGFR[i:] + EGFR[:i] for i in range(7)]  # seven different proteins: seven keys
    apply(
        cluster,
        namespace,
        *(
            server_msa_prediction(
                f"distinct-{i}",
                seq,
                prepare=played(prepare_ok(("A", "fetched")), only="prepare", run_duration="3s"),
            )
            for i, seq in enumerate(sequences)
        ),
    )

    def all_succeeded():
        items = cluster.kubectl_json("get", "boltzpredictions", "-n", namespace)["items"]
        return items if all((i.get("status") or {}).get("phase") == "Succeeded" for i in items) else None

    wait_until(all_succeeded, timeout=180, what="7 predictions Succeeded")
    intervals = [
        (when(j["metadata"]["creationTimestamp"]), when(j["status"]["completionTime"]))
        for j in jobs(cluster, namespace)
        if KEY_ANNOTATION in (j["metadata"].get("annotations") or {})
    ]
    assert len(intervals) == 7
    most = max(sum(1 for s, e in intervals if s <= t < e) for t, _ in intervals)
    assert most == 4, f"the chart's default msaServer.maxConcurrent is 4; {most} fetched at once"

"""Smoke tests that prove the local control plane is the real thing: scheduling, Jobs, failure policies,
volumes, Pod Security admission, CRDs, versions, and the S3 server."""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid

import pytest

from support.kwok import EXIT_CODE_ANNOTATION, RUN_DURATION_ANNOTATION, TERMINATION_MESSAGE_ANNOTATION
from support.wait import wait_until

pytestmark = pytest.mark.cluster


def job_manifest(
    name: str, *, gpus: int = 0, annotations: dict | None = None, failure_policy: dict | None = None
) -> str:
    container = {"name": "main", "image": "busybox", "command": ["true"]}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [container],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 3,
            "template": {"metadata": {"annotations": annotations or {}}, "spec": pod_spec},
        },
    }
    if failure_policy:
        job["spec"]["podFailurePolicy"] = failure_policy
    return json.dumps(job)


def job_condition(cluster, namespace: str, name: str, condition: str):
    job = cluster.kubectl_json("get", "job", name, "-n", namespace)
    for cond in job.get("status", {}).get("conditions", []):
        if cond["type"] == condition and cond["status"] == "True":
            return cond
    return None


def pods_of_job(cluster, namespace: str, name: str) -> list[dict]:
    return cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"job-name={name}")["items"]


def test_gpu_job_lands_on_a_gpu_node_and_its_termination_message_is_read_back(cluster, namespace):
    message = json.dumps({"ok": True, "results_uri": "s3://bucket/x"})
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=job_manifest("gpu", gpus=1, annotations={TERMINATION_MESSAGE_ANNOTATION: message}),
    )

    wait_until(lambda: job_condition(cluster, namespace, "gpu", "Complete"), timeout=60, what="Job gpu Complete")

    [pod] = pods_of_job(cluster, namespace, "gpu")
    node = cluster.kubectl_json("get", "node", pod["spec"]["nodeName"])
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert json.loads(terminated["message"]) == {"ok": True, "results_uri": "s3://bucket/x"}


def test_a_gpu_request_never_lands_on_the_cpu_node(cluster, namespace):
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=job_manifest("many", gpus=1))
    wait_until(lambda: job_condition(cluster, namespace, "many", "Complete"), timeout=60, what="Job many Complete")
    [pod] = pods_of_job(cluster, namespace, "many")
    assert pod["spec"]["nodeName"].startswith("kwok-gpu-")


def test_an_exit_code_reaches_the_jobs_pod_failure_policy(cluster, namespace):
    policy = {
        "rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]
    }
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=job_manifest("fails", annotations={EXIT_CODE_ANNOTATION: "42"}, failure_policy=policy),
    )

    failed = wait_until(
        lambda: job_condition(cluster, namespace, "fails", "Failed"), timeout=60, what="Job fails Failed"
    )

    assert failed["reason"] == "PodFailurePolicy"
    pods = pods_of_job(cluster, namespace, "fails")
    assert len(pods) == 1, "FailJob must stop retries at the first failure"
    assert pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 42


def test_an_evicted_pod_is_a_disruption_the_failure_policy_ignores(cluster, namespace):
    from kubernetes import client

    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=job_manifest("evicted", annotations={RUN_DURATION_ANNOTATION: "1h"}, failure_policy=policy),
    )
    [first] = wait_until(
        lambda: [p for p in pods_of_job(cluster, namespace, "evicted") if p["status"].get("phase") == "Running"],
        timeout=60,
        what="the first pod Running",
    )

    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_pod_eviction(
        first["metadata"]["name"],
        namespace,
        client.V1Eviction(metadata=client.V1ObjectMeta(name=first["metadata"]["name"], namespace=namespace)),
    )

    replacement = wait_until(
        lambda: [
            p for p in pods_of_job(cluster, namespace, "evicted") if p["metadata"]["name"] != first["metadata"]["name"]
        ],
        timeout=60,
        what="a replacement pod",
    )
    assert replacement
    job = wait_until(
        lambda: (
            (j := cluster.kubectl_json("get", "job", "evicted", "-n", namespace))["status"].get("active") == 1
            and not any(
                p["metadata"]["name"] == first["metadata"]["name"] for p in pods_of_job(cluster, namespace, "evicted")
            )
            and j
        ),
        timeout=60,
        what="the evicted pod gone and one pod active",
    )
    assert job["status"].get("failed", 0) == 0, "an eviction must not count against backoffLimit"


def test_a_pvc_binds_and_a_pod_mounting_it_read_only_is_admitted(cluster, namespace):
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=textwrap.dedent("""
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: models}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Gi}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: reader}
        spec:
          restartPolicy: Never
          containers:
            - name: main
              image: busybox
              volumeMounts: [{name: models, mountPath: /models, readOnly: true}]
          volumes:
            - name: models
              persistentVolumeClaim: {claimName: models, readOnly: true}
        """),
    )

    wait_until(
        lambda: cluster.kubectl_json("get", "pvc", "models", "-n", namespace)["status"].get("phase") == "Bound",
        timeout=60,
        what="PVC models Bound",
    )
    pod = wait_until(
        lambda: (
            (p := cluster.kubectl_json("get", "pod", "reader", "-n", namespace))["status"].get("phase") == "Running"
            and p
        ),
        timeout=60,
        what="pod reader Running",
    )
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True


def test_restricted_pod_security_rejects_a_privileged_pod(cluster, namespace):
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "main", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in result.stderr
    assert "privileged" in result.stderr


def test_a_crd_installs_and_kubectl_explain_shows_its_descriptions(cluster):
    group = f"smoke{uuid.uuid4().hex[:6]}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "description": "What the widget should be.",
                                    "properties": {
                                        "size": {
                                            "type": "integer",
                                            "description": "How many sprockets the widget holds.",
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd))
    try:
        explained = wait_until(
            lambda: (
                (r := cluster.kubectl("explain", f"widgets.{group}.spec.size", check=False)).returncode == 0
                and r.stdout
            ),
            timeout=30,
            what="kubectl explain to see the new CRD",
        )
        assert "How many sprockets the widget holds." in explained
    finally:
        cluster.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def test_the_components_report_their_pinned_versions(cluster):
    versions = dict(
        line.split("=", 1)
        for line in (cluster.state_dir.parent / "hack/cluster/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    server = cluster.kubectl_json("version")["serverVersion"]
    assert server["gitVersion"] == versions["KUBERNETES_VERSION"]
    helm = subprocess.run(
        [str(cluster.bin_dir / "helm"), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert helm.stdout.strip() == versions["HELM_VERSION"]


def test_boto3_round_trips_an_object_through_the_s3_server(s3_bucket):
    client, bucket = s3_bucket.client(), s3_bucket.name
    client.put_object(Bucket=bucket, Key="a/b.json", Body=b'{"x": 1}')
    assert client.get_object(Bucket=bucket, Key="a/b.json")["Body"].read() == b'{"x": 1}'
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["a/b.json"]

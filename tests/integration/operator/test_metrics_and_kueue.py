"""Prometheus metrics scraped from the running operator, and Kueue-style suspension seen as Queued."""

from __future__ import annotations

import json
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from boltz_contract import ErrorClass
from support.manifests import as_input, failure, model_cache, played, predict_ok, prediction
from support.wait import wait_until

pytestmark = pytest.mark.cluster


def phase(cluster, name, namespace):
    return (cluster.kubectl_json("get", "boltzprediction", name, "-n", namespace).get("status") or {}).get("phase")


def scrape(operator) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }, text


def sample(samples, name, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_count_phases_jobs_retries_and_durations_by_namespace_and_kind(cluster, namespace, operator):
    summary, code = failure(ErrorClass.GPU_DEVICE_ERROR, "CUDA error: unspecified launch failure")
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            model_cache(),
            prediction("good-one", pod_metadata=played(predict_ok("s3://r/g"))),
            prediction("flaky-one", pod_metadata=played(summary, exit_code=code), retries=1),
        ),
    )
    wait_until(
        lambda: (
            phase(cluster, "good-one", namespace) == "Succeeded" and phase(cluster, "flaky-one", namespace) == "Failed"
        ),
        timeout=120,
        what="one prediction Succeeded and one Failed",
    )

    samples, text = wait_until(
        lambda: (
            (r := scrape(operator))
            and sample(r[0], "boltz_resources", kind="BoltzPrediction", namespace=namespace, phase="Failed") == 1
            and r
        ),
        timeout=30,
        what="the phase gauge to show the failed prediction",
    )
    assert sample(samples, "boltz_resources", kind="BoltzPrediction", namespace=namespace, phase="Succeeded") == 1
    assert sample(samples, "boltz_resources", kind="BoltzModelCache", namespace=namespace, phase="Ready") == 1
    # Each prediction: its CPU prepare Job, then its GPU Job.
    assert sample(samples, "boltz_jobs_created_total", kind="BoltzPrediction", namespace=namespace) == 4
    assert sample(samples, "boltz_jobs_created_total", kind="BoltzModelCache", namespace=namespace) == 1
    assert (
        sample(samples, "boltz_retries_total", kind="BoltzPrediction", namespace=namespace, reason="GPUDeviceError")
        == 1
    )
    assert (
        sample(
            samples,
            "boltz_run_duration_seconds_count",
            kind="BoltzPrediction",
            namespace=namespace,
            outcome="Succeeded",
        )
        == 1
    )
    assert (
        sample(
            samples, "boltz_run_duration_seconds_count", kind="BoltzPrediction", namespace=namespace, outcome="Failed"
        )
        == 1
    )
    assert sample(samples, "boltz_queue_wait_seconds_count", kind="BoltzPrediction", namespace=namespace) == 2
    assert "good-one" not in text and "flaky-one" not in text, "object names never become labels"


def test_a_suspended_job_shows_as_queued_and_the_operator_leaves_suspend_alone(cluster, namespace, operator):
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=as_input(
            model_cache(),
            prediction("queued", pod_metadata=played(predict_ok("s3://r/q"), run_duration="5s"), queueName="gpu-queue"),
        ),
    )
    job = wait_until(
        lambda: cluster.kubectl_json("get", "job", "queued-predict", "-n", namespace),
        timeout=60,
        what="the prediction's Job",
    )
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    template = job["spec"]["template"]

    # Play Kueue: hold the Job (quota not available), then admit it.
    cluster.kubectl(
        "patch", "job", "queued-predict", "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {"suspend": True}})
    )
    wait_until(lambda: phase(cluster, "queued", namespace) == "Queued", timeout=60, what="the prediction Queued")
    cluster.kubectl(
        "patch",
        "job",
        "queued-predict",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"suspend": False}}),
    )
    wait_until(lambda: phase(cluster, "queued", namespace) == "Succeeded", timeout=90, what="the prediction Succeeded")

    after = cluster.kubectl_json("get", "job", "queued-predict", "-n", namespace)
    assert after["spec"]["template"] == template
    assert after["spec"]["suspend"] is False

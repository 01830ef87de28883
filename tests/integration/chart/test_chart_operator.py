"""The operator as the chart deploys it: the release's ServiceAccount identity, the release's Deployment environment,
watching the release's namespaces; its model cache and prediction pods admitted under the restricted Pod Security
profile. kwok plays the operator's own pod (a fake image), so the operator itself runs here as a local process with
a TokenRequest token of that ServiceAccount: a missing RBAC rule fails these tests as it would fail in a cluster."""

from __future__ import annotations

import pytest

import boltz_contract as contract
from support.chart import (
    FAKE_OPERATOR_IMAGE,
    RELEASE,
    RESTRICTED,
    AuditLog,
    Helm,
    Namespaces,
    deployment_env,
    fenced,
    operator_user,
)
from support.manifests import as_input, model_cache, played, predict_ok, prediction
from support.operator_fixtures import OperatorProcess, operator_kubeconfig
from support.wait import wait_until

pytestmark = pytest.mark.cluster

WORKER_IMAGE = "registry.example/worker-boltz:chart-test"
RESULTS = "s3://results/chart"


@pytest.fixture(scope="module")
def release(cluster, chart_crds, tmp_path_factory):
    """The chart in one restricted namespace, watching another restricted one where it made a model cache and a
    worker ServiceAccount; then its operator, running under the release's identity and env."""
    namespaces, helm = Namespaces(cluster), Helm(cluster, tmp_path_factory.mktemp("helm"))
    operator = None
    try:
        release_ns = namespaces.create("chart-op", labels=RESTRICTED)
        work_ns = namespaces.create("chart-work", labels=RESTRICTED)
        user = operator_user(release_ns)
        audit = AuditLog(cluster.audit_log)
        # The fence goes up first: the chart's model cache must be seen by this release's operator alone.
        with fenced(cluster, work_ns, user):
            helm.install(
                release_ns,
                {
                    "image": FAKE_OPERATOR_IMAGE,
                    "workerImages": {"boltz": {"repository": WORKER_IMAGE.split(":")[0], "tag": "chart-test"}},
                    "watchNamespaces": [work_ns],
                    "workerServiceAccount": {"name": "boltz-worker", "create": True},
                    "defaultModelCache": {
                        "enabled": True,
                        "namespaces": [work_ns],
                        "keepOnUninstall": False,
                        "spec": model_cache()["spec"],
                    },  # kwok plays a successful populate
                    "defaultResults": {
                        "s3": {"uri": RESULTS, "endpoint": "http://s3.example:8333", "credentialsSecret": "results-s3"}
                    },
                },
            )
            env = {
                k: v
                for k, v in deployment_env(cluster, release_ns).items()
                if k not in ("BOLTZ_OPERATOR_METRICS_PORT", "BOLTZ_OPERATOR_NAMESPACES")
            }
            workdir = tmp_path_factory.mktemp("chart-operator")
            kubeconfig = operator_kubeconfig(
                cluster, workdir / "kubeconfig", namespace=release_ns, service_account=RELEASE
            )
            operator = OperatorProcess(
                cluster, kubeconfig, workdir / "operator.log", env=env, namespaces=[work_ns]
            ).start()
            yield {"release_ns": release_ns, "work_ns": work_ns, "user": user, "audit": audit, "operator": operator}
    finally:
        if operator is not None:
            operator.stop()
        helm.close()
        namespaces.close()


def phase(cluster, kind, name, namespace):
    return (cluster.kubectl_json("get", kind, name, "-n", namespace).get("status") or {}).get("phase")


def test_a_prediction_completes_under_the_releases_identity_in_a_restricted_namespace(cluster, release):
    ns, user, operator = release["work_ns"], release["user"], release["operator"]
    # Generous: the shared cluster's 16 fake GPUs may be queued up by other tests (benchmarks) for a while.
    wait_until(
        lambda: phase(cluster, "boltzmodelcache", "default", ns) == "Ready",
        timeout=300,
        what=f"the chart's model cache Ready (operator log: {operator.log_path})",
    )
    pred = prediction("egfr", pod_metadata=played(predict_ok(f"{RESULTS}/{ns}/egfr/run")))
    del pred["spec"]["results"]  # the chart's default results store
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=as_input(pred))
    wait_until(
        lambda: phase(cluster, "boltzprediction", "egfr", ns) == "Succeeded",
        timeout=300,
        what=f"the prediction Succeeded (operator log: {operator.log_path})",
    )

    # The Job is the release's: its worker image, worker ServiceAccount, default results store.
    job = cluster.kubectl_json("get", "job", "egfr-predict", "-n", ns)
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["image"] == WORKER_IMAGE
    assert pod_spec["serviceAccountName"] == "boltz-worker" and pod_spec["automountServiceAccountToken"] is False
    run_config = cluster.kubectl_json("get", "configmap", "egfr-predict-run", "-n", ns)
    run = contract.RUN_ADAPTER.validate_json(run_config["data"][contract.RUN_FILE])
    assert run.results.uri.startswith(f"{RESULTS}/{ns}/egfr/")

    # The restricted profile admitted every pod the operator's Jobs made (a refused pod never exists).
    pods = cluster.kubectl_json("get", "pods", "-n", ns)["items"]
    jobs_of_pods = sorted(p["metadata"]["labels"]["batch.kubernetes.io/job-name"] for p in pods)
    assert jobs_of_pods == ["default-populate-1", "egfr-predict", "egfr-prepare"]  # the prepare pod too
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)

    # Everything the operator wrote here, it wrote as the release's ServiceAccount, and nothing was refused.
    entries = release["audit"].entries(user, ns)
    writes = {
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("subresource"), e["responseStatus"]["code"])
        for e in entries
    }
    assert ("create", "jobs", None, 201) in writes
    assert ("create", "configmaps", None, 201) in writes
    assert ("create", "persistentvolumeclaims", None, 201) in writes
    assert ("patch", "boltzpredictions", "status", 200) in writes
    assert ("patch", "boltzmodelcaches", "status", 200) in writes
    refused = [e for e in release["audit"].entries(user) if e["responseStatus"]["code"] == 403]
    assert not refused, [(e["verb"], e["requestURI"]) for e in refused]


def test_the_operator_asks_for_nothing_its_role_does_not_grant(cluster, release):
    log = release["operator"].log_path.read_text(errors="replace")
    forbidden = sorted({line.split(" -> ")[0].split("GET ")[-1] for line in log.splitlines() if "Forbidden" in line})
    assert not forbidden, forbidden


def test_the_namespaces_really_enforce_the_restricted_profile(cluster, release):
    root_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {
            "containers": [
                {"name": "c", "image": "registry.example/x:1", "securityContext": {"runAsUser": 0, "privileged": True}}
            ]
        },
    }
    for ns in (release["work_ns"], release["release_ns"]):
        refused = cluster.kubectl(
            "apply", "-n", ns, "--dry-run=server", "-f", "-", input=as_input(root_pod), check=False
        )
        assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr


def test_the_charts_own_operator_pod_runs_in_a_restricted_namespace(cluster, release):
    ns = release["release_ns"]
    deployment = cluster.kubectl_json("get", "deployment", RELEASE, "-n", ns)
    assert deployment["status"].get("availableReplicas") == 1
    [pod] = cluster.kubectl_json("get", "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    assert pod["status"]["phase"] == "Running"
    worker_sa = cluster.kubectl_json("get", "serviceaccount", "boltz-worker", "-n", release["work_ns"])
    assert worker_sa["automountServiceAccountToken"] is False

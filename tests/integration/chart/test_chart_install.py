"""`helm install / upgrade / uninstall` of the chart on the real control plane, and what its RBAC allows
(`kubectl auth can-i` as the operator's and the workers' identities)."""

from __future__ import annotations

import pytest

from support.chart import FAKE_OPERATOR_IMAGE, RELEASE, RESTRICTED, Namespaces, can_i, deployment_env, operator_user
from support.manifests import as_input, prediction
from support.wait import wait_until

pytestmark = pytest.mark.cluster

CRDS = ("boltzpredictions.boltz-operator.io", "boltzmodelcaches.boltz-operator.io")
PREDICTIONS = "boltzpredictions.boltz-operator.io"
CACHES = "boltzmodelcaches.boltz-operator.io"

# (verb, resource, subresource): what the operator needs, and what it must never be able to do.
OPERATOR_CAN = [
    ("list", PREDICTIONS, None),
    ("watch", PREDICTIONS, None),
    ("get", PREDICTIONS, None),
    ("patch", PREDICTIONS, "status"),
    ("list", CACHES, None),
    ("watch", CACHES, None),
    ("patch", CACHES, "status"),
    ("create", "jobs", None),
    ("list", "jobs", None),
    ("watch", "jobs", None),
    ("list", "pods", None),
    ("create", "configmaps", None),
    ("create", "events", None),
    ("get", "persistentvolumeclaims", None),
    ("create", "persistentvolumeclaims", None),
]
OPERATOR_CANNOT = [
    ("delete", "jobs", None),
    ("update", "jobs", None),
    ("patch", "jobs", None),
    ("patch", "jobs", "status"),
    ("get", "secrets", None),
    ("list", "secrets", None),
    ("watch", "secrets", None),
    ("create", "pods", None),
    ("delete", "pods", None),
    ("get", "pods", "log"),
    ("create", "pods", "exec"),
    ("patch", PREDICTIONS, None),
    ("update", PREDICTIONS, None),
    ("create", PREDICTIONS, None),
    ("delete", PREDICTIONS, None),
    ("patch", CACHES, None),
    ("delete", CACHES, None),
    ("delete", "persistentvolumeclaims", None),
    ("update", "persistentvolumeclaims", None),
    ("get", "configmaps", None),
    ("update", "configmaps", None),
    ("delete", "configmaps", None),
    ("create", "serviceaccounts", "token"),
    ("create", "rolebindings", None),
    ("*", "*", None),
]
WORKER_CANNOT = [
    ("get", "pods", None),
    ("list", "pods", None),
    ("get", "configmaps", None),
    ("list", "secrets", None),
    ("get", "secrets", None),
    ("list", PREDICTIONS, None),
    ("create", "jobs", None),
    ("create", "events", None),
]


@pytest.fixture(scope="module")
def cluster_wide(cluster, chart_crds, tmp_path_factory):
    """A release with default values (and a fake image) in a fresh namespace under the restricted Pod Security profile."""
    from support.chart import Helm

    namespaces, helm = Namespaces(cluster), Helm(cluster, tmp_path_factory.mktemp("helm"))
    try:
        namespace = namespaces.create("chart-install", labels=RESTRICTED)
        result = helm.install(namespace, {"image": FAKE_OPERATOR_IMAGE})
        yield namespace, result
    finally:
        helm.close()
        namespaces.close()


def test_install_applies_every_object_and_the_deployment_becomes_available(cluster, cluster_wide):
    namespace, result = cluster_wide
    assert "STATUS: deployed" in result.stdout
    assert "kubectl -n default get boltzmodelcaches,boltzpredictions" in result.stdout, "NOTES say what to do next"

    deployment = cluster.kubectl_json("get", "deployment", RELEASE, "-n", namespace)
    available = next(c for c in deployment["status"]["conditions"] if c["type"] == "Available")
    assert available["status"] == "True" and deployment["status"]["availableReplicas"] == 1
    [pod] = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    assert pod["status"]["phase"] == "Running"  # admitted under the restricted profile (the namespace enforces it)
    assert pod["spec"]["serviceAccountName"] == RELEASE
    assert pod["spec"]["containers"][0]["image"] == "registry.example/boltz-operator:chart-test"

    sa = cluster.kubectl_json("get", "serviceaccount", RELEASE, "-n", namespace)
    assert sa["metadata"]["annotations"]["meta.helm.sh/release-namespace"] == namespace
    for kind in ("clusterrole", "clusterrolebinding"):
        obj = cluster.kubectl_json("get", kind, f"{RELEASE}-{namespace}")
        assert obj["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE

    service = cluster.kubectl_json("get", "service", f"{RELEASE}-metrics", "-n", namespace)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("metrics", 9090)]
    slices = wait_until(
        lambda: [
            s
            for s in cluster.kubectl_json(
                "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={RELEASE}-metrics"
            )["items"]
            if s.get("endpoints")
        ],
        timeout=30,
        what="the metrics Service to select the operator pod",
    )
    assert slices[0]["ports"][0]["port"] == 9090
    assert slices[0]["endpoints"][0]["targetRef"]["name"] == pod["metadata"]["name"]

    for crd in CRDS:  # present before the install; helm left them as they were
        established = cluster.kubectl_json("get", "crd", crd)["status"]["conditions"]
        assert any(c["type"] == "Established" and c["status"] == "True" for c in established)


def test_the_operator_identity_has_exactly_what_it_needs(cluster, cluster_wide, namespace):
    user = operator_user(cluster_wide[0])
    missing = [rule for rule in OPERATOR_CAN if not can_i(cluster, user, rule[0], rule[1], namespace, rule[2])]
    excess = [rule for rule in OPERATOR_CANNOT if can_i(cluster, user, rule[0], rule[1], namespace, rule[2])]
    assert not missing and not excess, f"missing: {missing}; excess: {excess}"
    assert can_i(cluster, user, "watch", PREDICTIONS, None), "cluster-wide by default"


def test_the_worker_identity_can_do_nothing(cluster, cluster_wide, namespace):
    user = f"system:serviceaccount:{namespace}:default"
    allowed = [rule for rule in WORKER_CANNOT if can_i(cluster, user, rule[0], rule[1], namespace, rule[2])]
    assert not allowed, allowed


def test_watch_namespaces_grant_rights_there_and_nowhere_else(cluster, helm, namespaces):
    release_ns = namespaces.create("chart-scoped")
    watched, other = namespaces.create("chart-watched"), namespaces.create("chart-unwatched")
    helm.install(release_ns, {"image": FAKE_OPERATOR_IMAGE, "watchNamespaces": [watched]})
    user = operator_user(release_ns)

    assert deployment_env(cluster, release_ns)["BOLTZ_OPERATOR_NAMESPACES"] == watched
    for verb, resource, subresource in OPERATOR_CAN:
        assert can_i(cluster, user, verb, resource, watched, subresource), (verb, resource, subresource)
        assert not can_i(cluster, user, verb, resource, other, subresource), (verb, resource, subresource, other)
    assert not can_i(cluster, user, "list", PREDICTIONS, release_ns), "its own namespace is not watched"
    assert not can_i(cluster, user, "watch", PREDICTIONS, None), "nothing cluster-wide"
    assert cluster.kubectl("get", "clusterrolebinding", f"{RELEASE}-{release_ns}", check=False).returncode != 0


def test_upgrade_changes_the_operator_env_and_uninstall_leaves_crds_and_user_resources(cluster, helm, namespaces):
    namespace = namespaces.create("chart-upgrade", labels=RESTRICTED)
    values = {
        "image": FAKE_OPERATOR_IMAGE,
        "defaultModelCache": {"enabled": True, "namespaces": [namespace]},
        "workerServiceAccount": {"name": "boltz-worker", "create": True, "namespaces": [namespace]},
    }
    helm.install(namespace, values)
    env = deployment_env(cluster, namespace)
    assert env["BOLTZ_OPERATOR_DEFAULT_GPUS"] == "1"
    assert env["BOLTZ_OPERATOR_WORKER_IMAGE"] == "ghcr.io/boltz-operator/worker-boltz:0.1.0"
    worker_sa = cluster.kubectl_json("get", "serviceaccount", "boltz-worker", "-n", namespace)
    assert worker_sa["automountServiceAccountToken"] is False
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(prediction("mine")))  # a user's resource

    helm.upgrade(
        namespace,
        {
            **values,
            "gpu": {"resourceName": "nvidia.com/gpu", "defaultCount": 2},
            "workerImages": {"boltz": {"repository": "registry.example/worker-boltz", "tag": "2.0.0"}},
        },
    )
    env = deployment_env(cluster, namespace)
    assert env["BOLTZ_OPERATOR_DEFAULT_GPUS"] == "2"
    assert env["BOLTZ_OPERATOR_WORKER_IMAGE"] == "registry.example/worker-boltz:2.0.0"
    pods = wait_until(
        lambda: (
            (
                items := cluster.kubectl_json(
                    "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}"
                )["items"]
            )
            and len(items) == 1
            and items
        ),
        timeout=60,
        what="one operator pod after the upgrade (Recreate)",
    )
    pod_env = {e["name"]: e["value"] for e in pods[0]["spec"]["containers"][0]["env"]}
    assert pod_env["BOLTZ_OPERATOR_DEFAULT_GPUS"] == "2"
    assert helm("history", RELEASE, "-n", namespace, "--max", "5").stdout.count("\n") == 3  # header + 2 revisions

    helm.uninstall(namespace)

    for kind, name in (
        ("deployment", RELEASE),
        ("serviceaccount", RELEASE),
        ("service", f"{RELEASE}-metrics"),
        ("serviceaccount", "boltz-worker"),
    ):
        assert cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode != 0, (
            f"{kind}/{name} left behind"
        )
    for kind in ("clusterrole", "clusterrolebinding"):
        assert cluster.kubectl("get", kind, f"{RELEASE}-{namespace}", check=False).returncode != 0, (
            f"{kind} left behind"
        )
    wait_until(
        lambda: (
            not cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={RELEASE}")[
                "items"
            ]
        ),
        timeout=60,
        what="the operator pod to go",
    )
    assert not cluster.kubectl_json("get", "secrets", "-n", namespace, "-l", "owner=helm")["items"], (
        "release records left"
    )
    left = cluster.kubectl_json(
        "get",
        "all,serviceaccounts,roles,rolebindings,configmaps",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={RELEASE}",
    )["items"]
    assert left == [], [(o["kind"], o["metadata"]["name"]) for o in left]

    for crd in CRDS:
        assert cluster.kubectl("get", "crd", crd, check=False).returncode == 0, f"{crd} was removed"
    assert cluster.kubectl("get", "boltzprediction", "mine", "-n", namespace, check=False).returncode == 0
    kept = cluster.kubectl_json("get", "boltzmodelcache", "default", "-n", namespace)  # resource-policy: keep
    assert kept["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

"""The operator IMAGE as the chart runs it: Dockerfile.operator built from this checkout (hack/images/build.sh on
the Debian stand-in base), its own `boltz-operator` entrypoint run from its own root filesystem, read-only, as the
release's Deployment says (args, env, runAsUser/runAsGroup, the /tmp emptyDir), with the release's ServiceAccount
token and CA mounted where a kubelet mounts them and KUBERNETES_SERVICE_HOST/PORT set as a kubelet sets them. It
reconciles a model cache to Ready and a prediction to Succeeded on the local control plane (kwok plays the worker
pods). Also as an arbitrary uid without a passwd entry and without USER/LOGNAME, as OpenShift runs images.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from support.chart import RELEASE, RESTRICTED, AuditLog, Helm, Namespaces, fenced, operator_user
from support.images import BUILD_SECONDS, Bind, ImageRoot, Run, build_image, pod_run, stop
from support.manifests import as_input, model_cache, played, predict_ok, prediction
from support.operator_fixtures import free_port
from support.wait import wait_until

pytestmark = pytest.mark.cluster

RESULTS = "s3://results/image"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def operator_image(tmp_path_factory) -> str:
    ref = build_image("operator", tmp_path_factory.mktemp("images"))
    print(f"\n[images] operator built in {BUILD_SECONDS['operator']} s")
    return ref


@pytest.fixture(scope="module")
def image_release(cluster, chart_crds, operator_image, tmp_path_factory):
    """The chart installed with the built image in one restricted namespace, watching another."""
    namespaces, helm = Namespaces(cluster), Helm(cluster, tmp_path_factory.mktemp("helm"))
    try:
        release_ns = namespaces.create("image-op", labels=RESTRICTED)
        work_ns = namespaces.create("image-work", labels=RESTRICTED)
        user = operator_user(release_ns)
        repository, tag = operator_image.rsplit(":", 1)
        with fenced(cluster, work_ns, user):  # what happens in work_ns is this release's operator's doing alone
            helm.install(release_ns, {
                "image": {"repository": repository, "tag": tag},
                "watchNamespaces": [work_ns],
                "defaultResults": {"s3": {"uri": RESULTS, "endpoint": "http://s3.example:8333",
                                          "credentialsSecret": "results-s3"}},
            })  # fmt: skip
            yield {"release_ns": release_ns, "work_ns": work_ns, "user": user, "audit": AuditLog(cluster.audit_log),
                   "workdir": tmp_path_factory.mktemp("image-operator")}  # fmt: skip
    finally:
        helm.close()
        namespaces.close()


def pod_as_the_chart_defines_it(cluster, release) -> tuple[dict, dict]:
    deployment = cluster.kubectl_json("get", "deployment", RELEASE, "-n", release["release_ns"])
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def service_account_volume(cluster, release, directory: Path) -> Path:
    """What the kubelet projects for the release's ServiceAccount: a token, the cluster's CA, the namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    token = cluster.kubectl("create", "token", RELEASE, "-n", release["release_ns"], "--duration=1h").stdout.strip()
    admin = json.loads(cluster.kubeconfig.read_text())
    ca = base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(ca)
    (directory / "namespace").write_text(release["release_ns"])
    return directory


class ImageOperator:
    """The image's operator process, started as the release's pod spec says, on free loopback ports."""

    def __init__(self, cluster, release, image: ImageRoot, user: str, unset: tuple[str, ...], label: str):
        pod, container = pod_as_the_chart_defines_it(cluster, release)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        self.health_port, metrics_port = free_port(), free_port()
        server = urlparse(cluster.server)
        args, self.run = pod_run(pod, sources={}, extra_env={
            # Host network here: the probe and metrics ports move to free ones; all else is the release's.
            "BOLTZ_OPERATOR_METRICS_PORT": str(metrics_port),
            # What a kubelet sets, and mounts, for a pod with a ServiceAccount token.
            "KUBERNETES_SERVICE_HOST": server.hostname, "KUBERNETES_SERVICE_PORT": str(server.port)})  # fmt: skip
        args = [a if not a.startswith("--liveness=") else f"--liveness=http://127.0.0.1:{self.health_port}/healthz"
                for a in args]  # fmt: skip
        sa = service_account_volume(cluster, release, release["workdir"] / f"sa-{label}")
        self.run.binds.append(Bind(sa, SERVICE_ACCOUNT_DIR))
        self.run.user, self.run.unset = user, unset
        self.log = release["workdir"] / f"operator-{label}.log"
        self.proc = image.popen(args, self.run, self.log)
        wait_until(self._healthy, timeout=120, what=f"the image's operator health endpoint (log: {self.log})")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the image's operator exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}"
            )
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as response:
            return response.status == 200

    def stop(self) -> None:
        stop(self.proc)
        assert self.proc.returncode == 0, f"the operator did not stop cleanly on SIGTERM ({self.proc.returncode})"


def phase(cluster, kind: str, name: str, namespace: str) -> str | None:
    return (cluster.kubectl_json("get", kind, name, "-n", namespace).get("status") or {}).get("phase")


IDENTITIES = {
    # (runAsUser:runAsGroup, image variables the pod's environment lacks)
    "chart-uid-1000": ("1000:1000", ()),
    "arbitrary-uid-no-passwd-entry": ("1000730000:0", ("USER", "LOGNAME")),
}


@pytest.mark.parametrize("label", list(IDENTITIES))
def test_the_image_reconciles_a_cache_and_a_prediction_as_the_chart_runs_it(cluster, image_release, operator_image,
                                                                            label):  # fmt: skip
    user, unset = IDENTITIES[label]
    if label.startswith("chart"):
        pod, _ = pod_as_the_chart_defines_it(cluster, image_release)
        assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    ns, name = image_release["work_ns"], f"egfr-{label.split('-')[0]}"
    started = time.monotonic()
    with ImageRoot(operator_image) as image:
        assert user.split(":")[0] not in image.read("/etc/passwd").split(":")  # no passwd entry for either uid
        operator = ImageOperator(cluster, image_release, image, user, unset, label)
        try:
            cache = model_cache(name=f"cache-{label.split('-')[0]}")
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=as_input(cache))
            pred = prediction(name, pod_metadata=played(predict_ok(f"{RESULTS}/{ns}/{name}/run")))
            pred["spec"]["modelCache"] = cache["metadata"]["name"]
            del pred["spec"]["results"]  # the release's default results store
            cluster.kubectl("apply", "-n", ns, "-f", "-", input=as_input(pred))
            wait_until(
                lambda: phase(cluster, "boltzmodelcache", cache["metadata"]["name"], ns) == "Ready",
                timeout=300,
                what=f"the model cache Ready (log: {operator.log})",
            )
            wait_until(
                lambda: phase(cluster, "boltzprediction", name, ns) == "Succeeded",
                timeout=300,
                what=f"the prediction Succeeded (log: {operator.log})",
            )
        finally:
            operator.stop()
    print(
        f"\n[images] operator image as {user}: cache Ready and prediction Succeeded in "
        f"{time.monotonic() - started:.1f} s"
    )
    status = cluster.kubectl_json("get", "boltzprediction", name, "-n", ns)["status"]
    assert status["results"]["confidenceScore"] == predict_ok("x").confidence_score

    log = operator.log.read_text(errors="replace")
    assert "getpwuid" not in log and "Traceback" not in log, log[-4000:]
    # The writes were the release's ServiceAccount's (the in-cluster token), and none was refused.
    entries = image_release["audit"].entries(image_release["user"], ns)
    writes = {(e["verb"], e["objectRef"]["resource"], e["objectRef"].get("subresource")) for e in entries}
    assert {("create", "jobs", None), ("patch", "boltzpredictions", "status")} <= writes
    refused = [e for e in image_release["audit"].entries(image_release["user"]) if e["responseStatus"]["code"] == 403]
    assert not refused, [(e["verb"], e["requestURI"]) for e in refused]


def test_the_operator_image_holds_only_what_the_operator_imports(operator_image):
    """The operator shares the contract package with the workers, not their code or their S3 client."""
    probe = (
        "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
        "('boltz_operator', 'boltz_contract', 'kopf', 'boltz_worker', 'boto3', 'botocore')}))"
    )
    with ImageRoot(operator_image) as image:
        proc = image.run(["-c", probe], Run(entrypoint=["python"]))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "boltz_operator": True,
        "boltz_contract": True,
        "kopf": True,
        "boltz_worker": False,
        "boto3": False,
        "botocore": False,
    }

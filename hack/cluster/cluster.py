#!/usr/bin/env python3
"""A real local Kubernetes control plane on loopback, for tests and the demo.

etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok run as plain processes, built from
source by build-binaries.sh. kwok plays the kubelet for fake nodes (two GPU nodes, one CPU node).

    cluster.py up      start (or reuse a live) cluster; writes .cluster/kubeconfig, logs in .cluster/logs/
    cluster.py down    stop exactly the processes `up` started and remove .cluster/
    cluster.py status  print whether the cluster is live

Standard library only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STATE_DIR = Path(os.environ.get("BOLTZ_CLUSTER_DIR", REPO / ".cluster"))
STATE_FILE = STATE_DIR / "state.json"
KUBECONFIG = STATE_DIR / "kubeconfig"
MANIFESTS = HERE / "manifests"

# Components in start order; `down` stops them in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

# Controllers the tests and the operator rely on (names as kube-controller-manager --help lists them).
CONTROLLERS = [
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "garbage-collector-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "persistentvolume-binder-controller",
    "persistentvolumeclaim-protection-controller",  # removes the finalizer StorageObjectInUseProtection adds
    "persistentvolume-protection-controller",
    "pod-garbage-collector-controller",
    "deployment-controller",
    "replicaset-controller",
    "endpointslice-controller",
    "disruption-controller",
    "taint-eviction-controller",
    "node-lifecycle-controller",  # lifts the not-ready taint that admission puts on new nodes
]


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


class ClusterError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------- processes


def pid_alive(pid: int, binary: str) -> bool:
    """True when pid is running and is the binary we started (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return os.path.basename(cmdline) == os.path.basename(binary)


def stop_processes(state: dict) -> None:
    procs = state.get("processes", {})
    for name in reversed(COMPONENTS):
        proc = procs.get(name)
        if not proc or not pid_alive(proc["pid"], proc["binary"]):
            continue
        os.kill(proc["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(proc["pid"], proc["binary"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(proc["pid"], proc["binary"]):
            os.kill(proc["pid"], signal.SIGKILL)
        log(f"stopped {name} (pid {proc['pid']})")


def start_process(name: str, argv: list[str], state: dict, env: dict[str, str] | None = None) -> subprocess.Popen:
    logs = STATE_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / f"{name}.log", "ab")
    # A new session: the cluster outlives the shell (and the pytest run) that started it.
    proc = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **env} if env else None,
    )
    state["processes"][name] = {"pid": proc.pid, "binary": argv[0]}
    write_state(state)
    return proc


def write_state(state: dict) -> None:
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(STATE_FILE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------- waiting


def wait_for(what: str, check, timeout: float, procs: dict[str, subprocess.Popen] | None = None) -> None:
    """Poll check() until it returns truthy; fail early, with the log tail, if a component died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in (procs or {}).items():
            if proc.poll() is not None:
                raise ClusterError(
                    f"{name} exited with code {proc.returncode} while waiting for {what}:\n{log_tail(name)}"
                )
        try:
            if check():
                return
        except (OSError, ssl.SSLError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def log_tail(name: str, lines: int = 30) -> str:
    path = STATE_DIR / "logs" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def https_get(url: str, pki: Path, timeout: float = 2.0) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# ---------------------------------------------------------------------------------------------- certificates


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def make_pki(pki: Path) -> None:
    """A CA, the apiserver's serving cert, client certs per component, and the ServiceAccount signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3650",
        "-subj",
        "/CN=boltz-operator-local-ca",
        cwd=pki,
    )
    sans = "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    certs = {
        "apiserver": ("/CN=kube-apiserver", sans),
        "admin": ("/O=system:masters/CN=boltz-admin", None),
        "kube-controller-manager": ("/CN=system:kube-controller-manager", None),
        "kube-scheduler": ("/CN=system:kube-scheduler", None),
        # kwok acts for every fake node's kubelet; the harness gives it cluster-admin rather than a
        # node-authorizer identity per fake node.
        "kwok": ("/O=system:masters/CN=kwok-controller", None),
    }
    for name, (subject, ext) in certs.items():
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            cwd=pki,
        )
        sign = [
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "3650",
        ]
        if ext:
            (pki / f"{name}.ext").write_text(ext + "\n")
            sign += ["-extfile", f"{name}.ext"]
        openssl(*sign, cwd=pki)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(f"{user}.crt"), "client-key-data": b64(f"{user}.key")},
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML: no YAML library needed here
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------- up / down


def build_binaries() -> Path:
    result = subprocess.run([str(HERE / "build-binaries.sh")], stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ClusterError("building the control plane binaries failed (see the messages above)")
    return Path(result.stdout.strip().splitlines()[-1])


def load_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_live(state: dict | None) -> bool:
    if not state or not state.get("ready"):
        return False
    for name in COMPONENTS:
        proc = state["processes"].get(name)
        if not proc or not pid_alive(proc["pid"], proc["binary"]):
            return False
    try:
        status, body = https_get(f"{state['server']}/readyz", STATE_DIR / "pki")
    except (OSError, ssl.SSLError):
        return False
    return status == 200


def kubectl(bin_dir: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(bin_dir / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args], input=stdin, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def up() -> None:
    state = load_state()
    if is_live(state):
        log(f"cluster is live at {state['server']}; kubeconfig: {KUBECONFIG}")
        return
    if state:
        log("found a previous cluster that is not live; cleaning it up")
        stop_processes(state)
    shutil.rmtree(STATE_DIR, ignore_errors=True)

    started = time.monotonic()
    bin_dir = build_binaries()
    STATE_DIR.mkdir(parents=True)
    pki = STATE_DIR / "pki"
    make_pki(pki)

    ports = {
        name: free_port()
        for name in ("etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")
    }
    server = f"https://127.0.0.1:{ports['apiserver']}"
    state = {"server": server, "ports": ports, "bin_dir": str(bin_dir), "processes": {}, "ready": False}
    write_state(state)
    write_kubeconfig(KUBECONFIG, server, pki, "admin")
    for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
        write_kubeconfig(STATE_DIR / f"{component}.kubeconfig", server, pki, component)
    shutil.copy(MANIFESTS / "audit-policy.yaml", STATE_DIR / "audit-policy.yaml")

    procs: dict[str, subprocess.Popen] = {}
    etcd_url = f"http://127.0.0.1:{ports['etcd-client']}"
    procs["etcd"] = start_process(
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=local",
            f"--data-dir={STATE_DIR / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
            f"--initial-cluster=local=http://127.0.0.1:{ports['etcd-peer']}",
            "--unsafe-no-fsync",  # test data; fsync on every write would dominate on shared disks
            "--quota-backend-bytes=4294967296",
        ],
        state,
    )
    wait_for("etcd health", lambda: urllib.request.urlopen(f"{etcd_url}/health", timeout=1).status == 200, 30, procs)

    procs["kube-apiserver"] = start_process(
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=RBAC",
            # PodSecurity is on by default; listed so the intent is explicit.
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity,DefaultStorageClass,"
            "StorageObjectInUseProtection,DefaultTolerationSeconds,ResourceQuota,LimitRanger,Priority,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",  # privileged pods are refused by Pod Security labels, not globally
            f"--audit-policy-file={STATE_DIR / 'audit-policy.yaml'}",
            f"--audit-log-path={STATE_DIR / 'logs' / 'audit.log'}",
            "--audit-log-maxsize=500",
            "--audit-log-maxbackup=2",
            "--audit-log-mode=blocking",  # tests count writes from the log right after making them
            "--endpoint-reconciler-type=none",
            "--max-requests-inflight=1000",
            "--max-mutating-requests-inflight=500",
        ],
        state,
    )
    wait_for("kube-apiserver /readyz", lambda: https_get(f"{server}/readyz", pki)[0] == 200, 90, procs)

    procs["kube-controller-manager"] = start_process(
        "kube-controller-manager",
        [
            str(bin_dir / "kube-controller-manager"),
            f"--kubeconfig={STATE_DIR / 'kube-controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={STATE_DIR / 'kube-controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={STATE_DIR / 'kube-controller-manager.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--enable-hostpath-provisioner=true",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--concurrent-job-syncs=20",
        ],
        state,
    )
    procs["kube-scheduler"] = start_process(
        "kube-scheduler",
        [
            str(bin_dir / "kube-scheduler"),
            f"--kubeconfig={STATE_DIR / 'kube-scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={STATE_DIR / 'kube-scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={STATE_DIR / 'kube-scheduler.kubeconfig'}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--leader-elect=false",
        ],
        state,
    )
    procs["kwok"] = start_process(
        "kwok",
        [
            str(bin_dir / "kwok"),
            f"--kubeconfig={STATE_DIR / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--config={MANIFESTS / 'kwok-stages.yaml'}",
            "--server-address=127.0.0.1:" + str(ports["kwok"]),
            "--node-ip=127.0.0.1",
            "--cidr=10.244.0.0/16",
        ],
        state,
        env={"KWOK_WORKDIR": str(STATE_DIR / "kwok")},
    )  # else ~/.kwok/kwok.yaml is read too

    kubectl(bin_dir, "apply", "-f", str(MANIFESTS / "nodes.yaml"), "-f", str(MANIFESTS / "storageclass.yaml"))
    wait_for("fake nodes Ready", lambda: nodes_ready(bin_dir) == 3, 60, procs)
    wait_for(
        "default ServiceAccount",
        lambda: "default" in kubectl(bin_dir, "get", "sa", "-n", "default", "-o", "name"),
        60,
        procs,
    )
    state["ready"] = True
    write_state(state)
    log(f"cluster up in {time.monotonic() - started:.1f}s at {server}; export KUBECONFIG={KUBECONFIG}")


def nodes_ready(bin_dir: Path) -> int:
    nodes = json.loads(kubectl(bin_dir, "get", "nodes", "-o", "json"))["items"]
    return sum(
        1
        for node in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))
    )


def down() -> None:
    state = load_state()
    if state:
        stop_processes(state)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    log("cluster down")


def status() -> int:
    state = load_state()
    if is_live(state):
        print(f"live: {state['server']} (KUBECONFIG={KUBECONFIG})")
        return 0
    print("not running")
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args()
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        else:
            return status()
    except ClusterError as err:
        log(f"ERROR: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

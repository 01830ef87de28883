"""Results on a PVC: copied out through a short-lived reader pod that meets the restricted Pod Security profile
(non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp, no service account token), mounts the
claim read-only, and is deleted when the copy is done (activeDeadlineSeconds bounds it if the plugin dies).

The copy is `tar | base64` over the pod's exec stream (the Python client's exec channel is text), unpacked with
tarfile's `data` filter (no absolute paths, no links out, no devices), then checked like any other results.
"""

from __future__ import annotations

import base64
import io
import posixpath
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from .errors import PluginError
from .kube import Kube
from .manifests import MANAGED_BY

MOUNT = "/results"
READER_SECONDS = 600  # the pod's whole life, whatever happens to the plugin
# busybox has sh, tar and base64 and runs as any uid; --reader-image names a mirror where Docker Hub is out of reach.
DEFAULT_READER_IMAGE = "busybox:1.37"


def split_pvc_uri(uri: str) -> tuple[str, str]:
    """pvc://claim/path -> (claim, path), path relative to the volume's root."""
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    if not claim or ".." in path.split("/"):
        raise PluginError(f"not a usable PVC results URI: {uri}")
    return claim, path.strip("/")


def reader_pod(name: str, claim: str, image: str) -> dict[str, Any]:
    """The reader pod: sleeps until the plugin has copied what it needs, then is deleted."""
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**MANAGED_BY, "app.kubernetes.io/component": "results-reader"}},
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": READER_SECONDS,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "reader",
                    "image": image,
                    "command": ["sleep", str(READER_SECONDS)],
                    "securityContext": restricted,
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": "results", "mountPath": MOUNT, "readOnly": True}],
                }
            ],
            "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


def unpack(encoded: str, dest: Path) -> None:
    """The base64 text of a tar stream -> files under `dest` (tarfile's `data` filter refuses anything unsafe)."""
    try:
        data = base64.b64decode("".join(encoded.split()), validate=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
    except (ValueError, tarfile.TarError) as e:
        raise PluginError(f"the reader pod's copy is not a readable tar stream: {e}") from e


def copy_out(kube: Kube, uri: str, dest: Path, image: str = DEFAULT_READER_IMAGE, timeout: float = 120) -> None:
    """Copy the folder `uri` (pvc://claim/path) into `dest` through a reader pod. Raises PluginError."""
    claim, path = split_pvc_uri(uri)
    name = f"boltz-results-reader-{uuid.uuid4().hex[:8]}"
    core = kube.core
    try:
        core.create_namespaced_pod(kube.namespace, reader_pod(name, claim, image))
    except ApiException as e:
        raise PluginError(f"cannot create the reader pod for {uri}: {e.reason} ({e.status})") from e
    try:
        _wait_running(core, kube.namespace, name, timeout)
        folder = posixpath.join(MOUNT, path)
        encoded = stream(
            core.connect_get_namespaced_pod_exec, name, kube.namespace,
            command=["sh", "-c", f'cd "{folder}" && tar cf - . | base64'],
            stderr=False, stdin=False, stdout=True, tty=False,
        )  # fmt: skip
        unpack(encoded, dest)
    except ApiException as e:
        raise PluginError(f"cannot read {uri} through pod {name}: {e.reason} ({e.status})") from e
    finally:
        try:
            core.delete_namespaced_pod(name, kube.namespace, grace_period_seconds=0)
        except ApiException:
            pass  # activeDeadlineSeconds ends it anyway


def _wait_running(core: Any, namespace: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running":
            return
        if pod.status.phase in ("Failed", "Succeeded"):
            raise PluginError(f"the reader pod {name} ended ({pod.status.phase}) before the copy")
        time.sleep(1)  # polling a pod's phase; a watch would need its own reconnect handling for one short wait
    raise PluginError(f"the reader pod {name} did not start within {int(timeout)}s (image pull? quota? PVC in use?)")

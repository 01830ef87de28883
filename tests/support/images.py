"""The project's images, built from this checkout and run the way a container runtime runs them, without one.

Built by hack/images/build.sh on the Debian stand-in base (the Dockerfiles' public base cannot be pulled on these
machines; nothing else differs). Run from the image's own root filesystem (`buildah mount` of a fresh working
container), in a mount and PID namespace of its own (`unshare`), with the root filesystem read-only, the volumes a
pod would have bind-mounted, and the process entered by `chroot --userspec` as a numeric uid:gid that need not
exist in the image's passwd: the image's entrypoint, its config environment overlaid by the pod's, its working
directory. Host network, so the local control plane, S3 and HTTP fakes on loopback are reachable.

Needs root (mount namespaces, chroot), as CI and these machines have; buildah and debootstrap are installed from
Debian's packages by the build script when missing. Each built image is recorded with its build time in
`BUILD_SECONDS`, so tests report cold and warm builds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.cluster_fixtures import REPO

BUILD_SCRIPT = REPO / "hack" / "images" / "build.sh"
CACHE_HOME = Path(os.environ.get("BOLTZ_CACHE_HOME", Path.home() / ".cache" / "boltz-operator"))
STORAGE = [
    "--root",
    str(CACHE_HOME / "images" / "storage"),
    "--runroot",
    os.environ.get("BOLTZ_IMAGES_RUNROOT", "/run/boltz-operator-buildah"),
    "--storage-driver",
    "overlay",
]  # fmt: skip  (as hack/images/lib.sh)
BUILD_SECONDS: dict[str, int] = {}


def buildah(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(["buildah", *STORAGE, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc.stdout.strip()


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("running an image's root filesystem needs root here (mount namespaces, chroot)")


def build_image(name: str, log_dir: Path) -> str:
    """Build `name` (operator, worker-boltz, worker-boltzgen) with hack/images/build.sh; returns its reference.

    The build's output goes to `<log_dir>/build-<name>.log`; a failure quotes its tail.
    """
    require_root()
    log = log_dir / f"build-{name}.log"
    with open(log, "w") as out:
        proc = subprocess.run([str(BUILD_SCRIPT), "--standin-base", name], stdout=subprocess.PIPE, stderr=out,
                              text=True, timeout=3600)  # fmt: skip
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise AssertionError(f"building {name} failed ({proc.returncode}); {log}:\n{tail}")
    built, ref, seconds = proc.stdout.strip().splitlines()[-1].split()
    assert built == name
    BUILD_SECONDS[name] = int(seconds)
    return ref


@dataclass(frozen=True)
class Bind:
    """A host path mounted into the container (a pod's volume): read-only unless said otherwise."""

    source: Path
    target: str
    read_only: bool = True


@dataclass
class Run:
    """How a pod would run the container: the security context, the env it adds, its volumes and its args."""

    user: str = "1000:1000"  # uid:gid, numeric (runAsUser:runAsGroup)
    groups: tuple[int, ...] = ()  # supplementary groups (fsGroup)
    env: dict[str, str] = field(default_factory=dict)  # overlays the image's own (None-free)
    unset: tuple[str, ...] = ()  # image variables the pod's environment does not have
    binds: list[Bind] = field(default_factory=list)
    tmpfs: tuple[str, ...] = ("/tmp",)  # emptyDirs
    entrypoint: list[str] | None = None  # None: the image's (a container's `command`)
    termination_log: Path | None = None  # a host file mounted at /dev/termination-log


# What a runtime gives a container in /dev (the OCI runtime spec's default devices).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def pod_run(pod: dict, sources: dict[str, Path], extra_env: dict[str, str] | None = None) -> tuple[list[str], Run]:
    """(args, Run) for the first container of `pod` (a pod spec as the API serves it, camelCase): its command and
    args, its plain env values (plus `extra_env`), runAsUser:runAsGroup and fsGroup, and its volumes: emptyDirs
    become tmpfs, every other volume is the host path `sources[volume name]`, read-only where the mount or the
    PVC volume source says so.
    """
    [container] = pod["containers"][:1]
    context = pod.get("securityContext") or {}
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    binds, tmpfs = [], []
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            tmpfs.append(mount["mountPath"])
            continue
        read_only = bool(mount.get("readOnly") or (volume.get("persistentVolumeClaim") or {}).get("readOnly"))
        binds.append(Bind(sources[mount["name"]], mount["mountPath"], read_only=read_only))
    env = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
    run = Run(user=f"{context['runAsUser']}:{context['runAsGroup']}",
              groups=(context["fsGroup"],) if "fsGroup" in context else (),
              env={**env, **(extra_env or {})}, binds=binds, tmpfs=tuple(tmpfs),
              entrypoint=container.get("command"))  # fmt: skip
    return list(container.get("args") or []), run


class ImageRoot:
    """A fresh working container of `ref`, its root filesystem mounted on the host; `close()` removes it.

    Mount points for volumes are made in the container's own layer, as a runtime does; the image is not changed.
    """

    def __init__(self, ref: str):
        self.ref = ref
        self.container = buildah("from", "--pull=false", ref)
        self.root = Path(buildah("mount", self.container))
        config = json.loads(buildah("inspect", "--type", "container", self.container))["OCIv1"]["config"]
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.entrypoint: list[str] = config.get("Entrypoint") or []
        self.workdir: str = config.get("WorkingDir") or "/"

    def close(self) -> None:
        subprocess.run(["buildah", *STORAGE, "rm", self.container], capture_output=True, timeout=120)

    def __enter__(self) -> ImageRoot:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, path: str) -> str:
        return self.inside(path).read_text()

    def inside(self, path: str) -> Path:
        """`path` of the container, on the host, its symlinks resolved within the root filesystem (as a runtime
        does: /var/run -> /run must not lead to the host's /run). Components that do not exist yet are kept."""
        resolved, pending, hops = self.root, [p for p in path.split("/") if p], 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                resolved = resolved.parent if resolved != self.root else resolved
                continue
            candidate = resolved / part
            if candidate.is_symlink():
                hops += 1
                assert hops < 40, f"too many symlinks under {path}"
                link = os.readlink(candidate)
                pending = [p for p in link.split("/") if p] + pending
                resolved = self.root if link.startswith("/") else resolved
                continue
            resolved = candidate
        return resolved

    def command(self, args: list[str], run: Run) -> tuple[list[str], dict[str, str]]:
        """argv and environment for subprocess: the container's process, run as `run` says."""

        def at(path: str) -> str:  # a path inside the container, on the host
            return shlex.quote(str(self.inside(path)))

        steps = [f"mount --bind {at('')} {at('')}",
                 f"mkdir -p {at('/proc')} {at('/dev')}", f"mount -t proc proc {at('/proc')}",
                 f"mount -t tmpfs -o mode=755 tmpfs {at('/dev')}",
                 f"mkdir -p {at('/dev/shm')}", f"mount -t tmpfs -o mode=1777 tmpfs {at('/dev/shm')}"]  # fmt: skip
        devices = [Bind(Path(f"/dev/{d}"), f"/dev/{d}", read_only=False) for d in DEVICES]
        if run.termination_log is not None:  # the kubelet's file at /dev/termination-log, writable by any uid
            run.termination_log.touch()
            run.termination_log.chmod(0o666)
            devices.append(Bind(run.termination_log, "/dev/termination-log", read_only=False))
        for target in run.tmpfs:
            steps += [f"mkdir -p {at(target)}", f"mount -t tmpfs -o mode=1777 tmpfs {at(target)}"]
        for bind in [*devices, Bind(Path("/etc/hosts"), "/etc/hosts"), *run.binds]:
            is_dir = bind.source.is_dir()
            steps.append(f"mkdir -p {at(bind.target)}" if is_dir else f"touch {at(bind.target)}")
            steps.append(f"mount --bind {shlex.quote(str(bind.source))} {at(bind.target)}")
            if bind.read_only:
                steps.append(f"mount -o remount,bind,ro {at(bind.target)}")
        steps.append(f"mkdir -p {at(self.workdir)}")  # a runtime creates the working directory when it is missing
        steps.append(f"mount -o remount,bind,ro {at('')}")  # readOnlyRootFilesystem, last: mount points exist
        env = {k: v for k, v in {**self.env, **run.env}.items() if k not in run.unset}
        groups = [f"--groups={','.join(map(str, run.groups))}"] if run.groups else []
        process = [*(run.entrypoint if run.entrypoint is not None else self.entrypoint), *args]
        # chroot and env by absolute path: before the chroot PATH is the host's, after it the container's.
        enter = [
            "/usr/sbin/chroot",
            f"--userspec={run.user}",
            *groups,
            str(self.root),
            "/usr/bin/env",
            "-i",
            f"--chdir={self.workdir}",
            *(f"{k}={v}" for k, v in env.items()),
            *process,
        ]
        steps.append("exec " + " ".join(map(shlex.quote, enter)))
        script = "set -e\n" + "\n".join(steps)
        argv = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "sh", "-c", script]
        return argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}

    def run(self, args: list[str], run: Run, timeout: float = 600) -> subprocess.CompletedProcess:
        argv, env = self.command(args, run)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    def popen(self, args: list[str], run: Run, log: Path) -> subprocess.Popen:
        """Start the container's process in the background (a session of its own: see `stop`)."""
        argv, env = self.command(args, run)
        with open(log, "ab") as out:
            return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to the container's process, as a runtime stops a container; SIGKILL after `timeout` seconds.

    Sent to the whole session: `unshare --fork` itself ignores SIGTERM while it waits for its child.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


def project(pod: dict, volume_name: str, configmaps: dict[str, dict[str, str]], dest: Path) -> Path:
    """Write what the kubelet would project for `volume_name` of `pod` (a projected or configMap volume) into
    `dest`: each item of each ConfigMap source at its path. `configmaps`: name -> data."""
    [volume] = [v for v in pod["volumes"] if v["name"] == volume_name]
    sources = (
        [s["configMap"] for s in volume["projected"]["sources"]] if "projected" in volume else [volume["configMap"]]
    )
    for source in sources:
        data = configmaps[source["name"]]
        for item in source.get("items") or [{"key": key, "path": key} for key in data]:
            path = dest / item["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[item["key"]])
    return dest

"""Measuring tools for the benchmarks: a watch recorder (in a process of its own), the audit-log reader, stats.

The recorder runs in a separate process so that the benchmark's own client threads (which hold the GIL while
they serialize requests) do not delay the moment an event is seen. Both processes use time.monotonic(), which
is system-wide on Linux, so times from the two are comparable.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

GROUP, VERSION = "boltz-operator.io", "v1alpha1"


# ---------------------------------------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "min": min(values) if values else None,
    }


def fmt_s(value: float | None) -> str:
    return "n/a" if value is None else (f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s")


# ---------------------------------------------------------------------------------------------- watch recorder


class WatchLog:
    """Child side of a recorder: list-and-watch threads that append JSON lines to one file.

    Lines: {"t": monotonic, "k": kind, "n": name, "e": event, **extra} once per (kind, name, event) (`emit`),
    {"k": "ready", "n": kind} once a kind's initial list is done (objects created after it are seen), and
    {"k": "error", "n": kind, "e": repr} when a watch broke (it relists and goes on).
    """

    def __init__(self, kubeconfig: str, out_path: str):
        self.kubeconfig = kubeconfig
        self.out = open(out_path, "a", buffering=1)
        self.lock = threading.Lock()
        self.seen: set[tuple[str, str, str]] = set()

    def api(self):
        """A client of its own (own connection pool) for each watching thread."""
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)

    def write(self, record: dict) -> None:
        with self.lock:
            self.out.write(json.dumps(record) + "\n")

    def emit(self, kind: str, name: str, event: str, **extra) -> None:
        """The first sighting of (kind, name, event), with the time it was seen; later ones are dropped."""
        with self.lock:
            if (kind, name, event) in self.seen:
                return
            self.seen.add((kind, name, event))
            self.out.write(json.dumps({"t": time.monotonic(), "k": kind, "n": name, "e": event, **extra}) + "\n")

    def follow(self, kind: str, lister, handler) -> None:
        """List, then watch from the list's resourceVersion, forever: handler(obj, "list"|"watch") for each object
        listed, ADDED or MODIFIED. Relists after 410 Gone or a dropped connection."""
        from kubernetes import watch

        ready = False
        while True:
            try:
                resp = lister(_preload_content=False)
                body = json.loads(resp.data)
                for item in body.get("items") or []:
                    handler(item, "list")
                rv = body["metadata"]["resourceVersion"]
                if not ready:
                    ready = True
                    self.write({"k": "ready", "n": kind})
                while True:
                    for event in watch.Watch().stream(
                        lister, resource_version=rv, timeout_seconds=240, allow_watch_bookmarks=True, deserialize=False
                    ):
                        obj = event["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            handler(obj, "watch")
            except Exception as err:  # noqa: BLE001 - 410 Gone or a dropped connection: relist and go on
                self.write({"k": "error", "n": kind, "e": repr(err)[:300]})
                time.sleep(0.2)

    def run(self, follows: list[tuple[str, object, object]]) -> None:
        """follow(kind, lister, handler) for each, in a thread each; never returns (the parent terminates it)."""
        threads = [threading.Thread(target=self.follow, args=args, daemon=True) for args in follows]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


class Recorder:
    """Parent side: starts a WatchLog child process (target(kubeconfig, namespace, out_path)) and reads back, with
    `poll()`, what it has written so far. `first` holds each (kind, name, event)'s first time; a subclass that
    wants more from a line overrides `on_record`."""

    KINDS: set[str] = set()  # the kinds whose initial list `start()` waits for

    def __init__(self, target, kubeconfig: Path, namespace: str, out_path: Path):
        self.out_path = out_path
        self.out_path.write_text("")
        ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
        self.process = ctx.Process(target=target, args=(str(kubeconfig), namespace, str(out_path)), daemon=True)
        self._offset = 0
        self._partial = ""
        self.first: dict[tuple[str, str, str], float] = {}  # (kind, name, event) -> monotonic time
        self.ready: set[str] = set()
        self.errors: list[str] = []

    def start(self, timeout: float = 60):
        self.process.start()
        deadline = time.monotonic() + timeout
        while self.ready != self.KINDS:
            if not self.process.is_alive():
                raise AssertionError(f"the watch recorder exited with {self.process.exitcode}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the watch recorder was not ready in {timeout}s: {self.errors[-3:]}")
            self.poll()
            time.sleep(0.05)
        return self

    def poll(self) -> None:
        with open(self.out_path) as f:
            f.seek(self._offset)
            chunk = f.read()
            self._offset = f.tell()
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if not line:
                continue
            rec = json.loads(line)
            if rec["k"] == "ready":
                self.ready.add(rec["n"])
            elif rec["k"] == "error":
                self.errors.append(f"{rec['n']}: {rec['e']}")
            else:
                self.on_record(rec)

    def on_record(self, rec: dict) -> None:
        self.first.setdefault((rec["k"], rec["n"], rec["e"]), rec["t"])

    def at(self, kind: str, name: str, event: str) -> float | None:
        return self.first.get((kind, name, event))

    def times(self, kind: str, event: str, names: Iterable[str]) -> dict[str, float]:
        return {n: t for n in names if (t := self.first.get((kind, n, event))) is not None}

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()  # our own child, by its handle
            self.process.join(timeout=10)


def status_digest(status: dict) -> str:
    """A prediction status in a few characters: phase, condition types, attempts, startTime set."""
    if not status:
        return "(none)"
    conds = "".join(sorted(c.get("type", "?")[0] for c in status.get("conditions") or []))
    attempts = status.get("attempts")
    return (
        f"{status.get('phase')}[c={conds or '-'},a={'-' if attempts is None else attempts},"
        f"s={'y' if status.get('startTime') else '-'}]"
    )


def _record_watch(kubeconfig: str, namespace: str, out_path: str) -> None:
    """Child process: watch Jobs and BoltzPredictions in namespace (WatchLog's lines, with "via": "watch"|"list").

    {"k": "job", "e": "added"|"complete"|"failed"}, {"k": "pred", "e": <phase>}, and {"k": "seq", "n": prediction,
    "e": status_digest} at every change of a prediction status's shape.
    """
    from kubernetes import client

    log = WatchLog(kubeconfig, out_path)

    def on_job(obj: dict, via: str) -> None:
        name = obj["metadata"]["name"]
        log.emit("job", name, "added", via=via)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
                log.emit("job", name, cond["type"].lower(), via=via)

    last_digest: dict[str, str] = {}

    def on_prediction(obj: dict, via: str) -> None:
        status = obj.get("status") or {}
        name = obj["metadata"]["name"]
        log.emit("pred", name, status.get("phase") or "None", via=via)
        # Every change of the status's shape, to show how a prediction's status moves (and whether it flaps).
        digest = status_digest(status)
        if last_digest.get(name) != digest:
            last_digest[name] = digest
            log.write({"t": time.monotonic(), "k": "seq", "n": name, "e": digest})

    batch, custom = client.BatchV1Api(log.api()), client.CustomObjectsApi(log.api())
    log.run(
        [
            ("job", lambda **kw: batch.list_namespaced_job(namespace, **kw), on_job),
            (
                "pred",
                lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "boltzpredictions", **kw),
                on_prediction,
            ),
        ]
    )


class WatchRecorder(Recorder):
    """Jobs and BoltzPredictions of the prediction bench: first sightings, which came from a relist, and each
    prediction's sequence of status digests."""

    KINDS = {"job", "pred"}

    def __init__(self, kubeconfig: Path, namespace: str, out_path: Path):
        super().__init__(_record_watch, kubeconfig, namespace, out_path)
        self.via_list: Counter = Counter()
        self.sequences: dict[str, list[str]] = {}  # prediction -> the status digests it went through, in order

    def on_record(self, rec: dict) -> None:
        if rec["k"] == "seq":
            self.sequences.setdefault(rec["n"], []).append(rec["e"])
            return
        super().on_record(rec)
        if rec["via"] == "list":
            self.via_list[(rec["k"], rec["e"])] += 1


# ---------------------------------------------------------------------------------------------- CPU accounting


CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process (its threads included), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of stat(5))


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


class CpuMeter:
    """CPU used by named processes and by the whole machine between start() and stop()."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids

    def start(self) -> CpuMeter:
        self.t0, self.machine0 = time.monotonic(), machine_busy_seconds()
        self.cpu0 = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict:
        wall = time.monotonic() - self.t0
        used = {}
        for name, pid in self.pids.items():
            now, before = process_cpu_seconds(pid), self.cpu0.get(name)
            if now is not None and before is not None:
                used[name] = now - before
        machine = machine_busy_seconds() - self.machine0
        return {
            "wall_seconds": wall,
            "cpu_seconds": used,
            "machine_busy_cpu_seconds": machine,
            "others_cpu_seconds": machine - sum(used.values()),
            "cores": os.cpu_count(),
        }


# ---------------------------------------------------------------------------------------------- audit log


@dataclass(frozen=True)
class AuditMark:
    """A position in the apiserver's audit log: the file's inode and size, and the wall-clock time."""

    path: Path
    inode: int
    offset: int
    wall: float

    @classmethod
    def now(cls, path: Path) -> AuditMark:
        st = path.stat()
        return cls(path, st.st_ino, st.st_size, time.time())


def audit_lines_since(mark: AuditMark, needle: str) -> Iterator[dict]:
    """Audit events written since mark whose raw line contains needle (a cheap pre-filter before parsing).

    The apiserver rotates the log (audit-<time>.log) at 500 MB: the file that had the mark's inode is read from
    the mark's offset, files begun after it are read whole.
    """
    files = sorted(mark.path.parent.glob("audit*.log"), key=lambda p: p.stat().st_mtime)
    for path in files:
        st = path.stat()
        if st.st_ino == mark.inode:
            start = mark.offset
        elif st.st_mtime >= mark.wall:
            start = 0
        else:
            continue
        with open(path, "rb") as f:
            f.seek(start)
            for raw in f:
                if needle.encode() not in raw:
                    continue
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError:  # the last line, still being written
                    continue


def namespace_writes(mark: AuditMark, namespace: str) -> list[dict]:
    """The audit events since mark on objects in namespace (the raw-line needle alone would also match an event that
    names the namespace elsewhere)."""
    return [
        e
        for e in audit_lines_since(mark, f'"namespace":"{namespace}"')
        if (e.get("objectRef") or {}).get("namespace") == namespace
    ]


def unnamed(event: dict) -> bool:
    """A create by generateName (the Job controller creates its pods so): the audit log records it with no object
    name (the name is generated after the request is read), so no owner can be told from it."""
    return not (event.get("objectRef") or {}).get("name")


def owned_writes(events: Iterable[dict], owner_pattern: re.Pattern, since: datetime | None = None) -> list[dict]:
    """The events on objects whose name owner_pattern matches, and the unnamed ones (`unnamed`; only those from
    since on, when given): the caller knows that the namespace's unnamed writes in that time are its objects' own
    (their Jobs' pods)."""
    return [
        e
        for e in events
        if (unnamed(e) and (since is None or stage_time(e) >= since))
        or (not unnamed(e) and owner_pattern.match(e["objectRef"]["name"]))
    ]


def token_jti(kubeconfig: Path) -> str | None:
    """The `jti` claim of the ServiceAccount token in a kubeconfig: the audit log names it in
    user.extra["authentication.kubernetes.io/credential-id"], which tells this operator's writes from those
    of another operator under the same ServiceAccount (another engineer's test session)."""
    import base64

    token = json.loads(kubeconfig.read_text())["users"][0]["user"]["token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims.get("jti")


def credential_id(event: dict) -> str | None:
    ids = ((event.get("user") or {}).get("extra") or {}).get("authentication.kubernetes.io/credential-id") or []
    return ids[0] if ids else None


def write_key(event: dict) -> str:
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    code = (event.get("responseStatus") or {}).get("code")
    return f"{event.get('verb')} {resource} -> {code}"


def stage_time(event: dict) -> datetime:
    return datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00"))


@dataclass
class OwnerWrites:
    """Audit events grouped by the bench object they belong to (a prediction, or anything else)."""

    by_owner: dict[str, list[dict]] = field(default_factory=dict)
    other: list[dict] = field(default_factory=list)


def group_by_prediction(events: Iterable[dict], owner_pattern: re.Pattern) -> OwnerWrites:
    """owner_pattern matches the prediction's name at the start of a child's name: <p>-predict (Job),
    <p>-predict-run (ConfigMap), <p>-predict-xxxxx (pod), <p>.<hex> (Event); group(1) is the prediction."""
    grouped = OwnerWrites()
    for event in events:
        name = (event.get("objectRef") or {}).get("name") or ""
        match = owner_pattern.match(name)
        if match:
            grouped.by_owner.setdefault(match.group(1), []).append(event)
        else:
            grouped.other.append(event)
    return grouped


def user_label(event: dict, operator_user: str, operator_jti: str | None) -> str:
    user = (event.get("user") or {}).get("username", "?")
    if user == operator_user:
        cred = credential_id(event)
        if operator_jti and cred and cred != f"JTI={operator_jti}":
            return "operator (ANOTHER process: same ServiceAccount, other token)"
        return "operator (this bench)"
    return user


def other_operator_pids(exclude: Iterable[int] = ()) -> list[int]:
    """Pids of `boltz-operator run` processes on this machine other than ours (other engineers' test sessions run
    one with -A, which reconciles the bench namespace too). Read from /proc, as ps does."""
    found = []
    skip = {os.getpid(), *exclude}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"boltz_operator.cli" in argv and b"run" in argv:
            found.append(int(entry.name))
    return found

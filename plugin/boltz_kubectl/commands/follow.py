"""`status`, `logs`, `wait` and `results`: following a prediction, campaign or screen the plugin (or anyone)
created."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from boltz_operator.builders.campaign import job_name as campaign_job
from boltz_operator.builders.prediction import job_name as prediction_job
from boltz_operator.builders.prepare import job_name as prepare_job
from boltz_operator.builders.screen import PREPARE, RANK, SHARDS
from boltz_operator.builders.screen import job_name as screen_job

from ..errors import ExitCode, PluginError
from ..fetch import LocalSource, S3Source, Source, fetch_campaign, fetch_prediction, fetch_screen
from ..kube import KIND_FLAGS, KINDS, Kube
from ..pvc import copy_out
from ..s3 import s3_client

# The headline scores of a prediction, as status.results spells them, with the label status prints.
SCORES = (
    ("confidenceScore", "confidence"),
    ("ptm", "pTM"),
    ("iptm", "ipTM"),
    ("complexPlddt", "pLDDT"),
    ("affinityPredValue", "affinity log10(IC50/uM)"),
    ("affinityProbabilityBinary", "P(binder)"),
)
TOP_SHOWN = 5  # the best designs or ligands status lists (-o wide: all that status holds)


def parse_duration(text: str | None) -> float | None:
    """kubectl's durations: 90, 90s, 15m, 2h (None or 0: no limit)."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError) as e:
        raise PluginError(f"invalid duration {text!r}: write e.g. 90s, 15m or 2h", code=ExitCode.USAGE) from e
    return seconds or None


def _kind(args: argparse.Namespace) -> str | None:
    return KIND_FLAGS[args.kind] if getattr(args, "kind", None) else None


# ---------------------------------------------------------------------------------------------- status


def status(args: argparse.Namespace, kube: Kube) -> int:
    obj = kube.find(args.name, _kind(args))
    if args.output in ("yaml", "json"):
        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False) if args.output == "yaml" else json.dumps(obj, indent=2))
        return 0
    st = obj.get("status") or {}
    rows = [("Name", obj["metadata"]["name"]), ("Namespace", kube.namespace), ("Kind", obj["kind"])]
    rows.append(("Phase", st.get("phase") or "(not reconciled yet: is the operator running?)"))
    if st.get("message"):
        rows.append(("Message", st["message"]))
    why = explaining_condition(st)
    if why:
        rows.append(("Why", f"{why['type']}={why['status']} {why.get('reason', '')}: {why.get('message', '')}"))
    results = st.get("results") or {}
    scores = [f"{label} {results[key]:.3g}" for key, label in SCORES if results.get(key) is not None]
    if scores:
        rows.append(("Scores", ", ".join(scores)))
    progress = st.get("progress")
    if progress:
        rows.append(("Progress", _progress(progress)))
    shown = None if args.output == "wide" else TOP_SHOWN
    for design in (results.get("topDesigns") or [])[:shown]:
        metrics = " ".join(f"{k}={v:.3g}" for k, v in (design.get("metrics") or {}).items())
        rows.append((f"Top {design['rank']}", f"{design['id']} {metrics}"))
    for ligand in (results.get("topLigands") or [])[:shown]:
        rows.append((f"Top {ligand['rank']}", _ligand(ligand)))
    for key, label in (("uri", "Results"), ("table", "Table"), ("parquet", "Parquet"), ("report", "Report")):
        if results.get(key):
            rows.append((label, results[key]))
    width = max(len(k) for k, _ in rows) + 1
    for key, value in rows:
        print(f"{key + ':':<{width}} {value}")
    conditions = st.get("conditions") or []
    if conditions:
        print("Conditions:")
        for c in conditions:
            extra = f"  {c.get('lastTransitionTime', '')}" if args.output == "wide" else ""
            print(f"  {c['type']:<18} {c['status']:<7} {c.get('reason', ''):<24} {c.get('message', '')}{extra}")
    events = kube.events(obj)
    print("Events:" if events else "Events: <none>")
    now = datetime.now(UTC)
    for ev in events:
        when = ev.last_timestamp or ev.event_time or ev.first_timestamp
        age = f"{int((now - when).total_seconds())}s" if when else "?"
        print(f"  {age:>6} {ev.type:<8} {ev.reason:<24} {ev.message}")
    return 0


def explaining_condition(status: dict[str, Any]) -> dict[str, Any] | None:
    """The condition that says why a run waits or failed: Failed=True, else the first condition that is False."""
    conditions = status.get("conditions") or []
    failed = [c for c in conditions if c["type"] == "Failed" and c["status"] == "True"]
    if failed:
        return failed[0]
    if status.get("phase") == "Succeeded":
        return None
    return next((c for c in conditions if c["status"] == "False" and c["type"] not in ("Complete", "Failed")), None)


def _progress(p: dict[str, Any]) -> str:
    if "ligandsTotal" in p or "ligandsDone" in p:  # a screen's
        ligands = (
            f"ligands {p.get('ligandsDone', 0)}/{p.get('ligandsTotal', '?')} done, {p.get('ligandsFailed', 0)} failed"
        )
        shards = f"shards {p.get('shardsSucceeded', 0)}/{p.get('shardsTotal', '?')} succeeded"
        return f"{ligands}; {shards}, {p.get('shardsFailed', 0)} failed"
    shards = f"shards {p.get('shardsSucceeded', 0)}/{p.get('shardsTotal', '?')} succeeded"
    shards += f", {p.get('shardsFailed', 0)} failed, {p.get('shardsRunning', 0)} running"
    designs = f"designs {p.get('designsCompleted', 0)}/{p.get('designsRequested', '?')}"
    if p.get("designsSelected") is not None:
        designs += f", {p['designsSelected']} selected"
    return f"{shards}; {designs}"


def _ligand(ligand: dict[str, Any]) -> str:
    """A top ligand of a screen: its id, boltz's figures, its SMILES."""
    figures = [
        f"{label} {ligand[key]:.3g}"
        for key, label in (
            ("affinityProbabilityBinary", "P(binder)"),
            ("affinityPredValue", "affinity"),
            ("ligandIptm", "ligand ipTM"),
            ("confidenceScore", "confidence"),
        )  # fmt: skip
        if ligand.get(key) is not None
    ]
    smiles = f"  {ligand['smiles']}" if ligand.get("smiles") else ""
    return f"{ligand['id']}  {', '.join(figures)}{smiles}"


# ---------------------------------------------------------------------------------------------- logs


def logs(args: argparse.Namespace, kube: Kube) -> int:
    obj = kube.find(args.name, _kind(args))
    st = obj.get("status") or {}
    name = obj["metadata"]["name"]
    _check_log_flags(args, obj)
    shard = 0 if args.shard is None else args.shard
    index = f"batch.kubernetes.io/job-completion-index={shard}"
    if obj["kind"] == "BoltzPrediction":
        # the GPU step's pod once there is one, else the CPU prepare step's (whose log says why input was refused)
        jobs, selector = [prediction_job(name), prepare_job(name)], ""
    elif obj["kind"] == "BoltzScreen":
        if args.rank:
            jobs, selector = [screen_job(name, RANK)], ""
        elif args.prepare:
            jobs, selector = [screen_job(name, PREPARE)], ""
        else:
            # shard --shard's pod once the shard Job runs; before that, when no --shard was given, the prepare
            # step's (why the library or target was refused)
            jobs, selector = [screen_job(name, SHARDS)], index
            if args.shard is None and not kube.pods(jobs, selector):
                jobs, selector = [screen_job(name, PREPARE)], ""
    elif args.filter:
        jobs, selector = [campaign_job(name, "filter")], ""
    else:
        jobs, selector = [campaign_job(name, "design")], index
    pods = kube.pods(jobs, selector)
    if not pods:
        why = explaining_condition(st)
        hint = f" ({why['reason']}: {why.get('message', '')})" if why else ""
        raise PluginError(f"no worker pod yet for {obj['kind']}/{name} (job {jobs[0]}, phase {st.get('phase')}){hint}")
    pod = pods[0]  # the newest attempt
    print(f"# pod {pod.metadata.name} ({pod.status.phase})", file=sys.stderr)
    sys.stdout.write(kube.log(pod.metadata.name, tail=args.tail))
    return 0


def _check_log_flags(args: argparse.Namespace, obj: dict[str, Any]) -> None:
    """Refuse the flags of `logs` that are for another kind, and a --shard the run does not have (when its shard
    count is known: status.progress.shardsTotal)."""
    kind = obj["kind"]
    singular = KINDS[kind].singular
    allowed = {
        "BoltzPrediction": (),
        "BoltzGenCampaign": ("shard", "filter"),
        "BoltzScreen": ("shard", "prepare", "rank"),
    }
    for flag in ("shard", "filter", "prepare", "rank"):
        given = getattr(args, flag) not in (None, False)
        if given and flag not in allowed[kind]:
            raise PluginError(f"--{flag} is not for a {singular} ({obj['metadata']['name']})", code=ExitCode.USAGE)
    total = ((obj.get("status") or {}).get("progress") or {}).get("shardsTotal")
    if args.shard is not None and total and args.shard >= total:
        run = "screen" if kind == "BoltzScreen" else "campaign"
        shards = f"{total} shard" + ("" if total == 1 else "s") + (f" (0-{total - 1})" if total > 1 else " (0)")
        raise PluginError(f"no shard {args.shard}: the {run} has {shards}")


# ---------------------------------------------------------------------------------------------- wait


def wait(args: argparse.Namespace, kube: Kube) -> int:
    kind = _kind(args) or kube.find(args.name)["kind"]
    return wait_for(kube, kind, args.name, args.timeout)


def wait_for(kube: Kube, kind: str, name: str, timeout: str | None) -> int:
    """Wait until the run ends: 0 when it Succeeded, 1 when it Failed (its message on stderr), 3 on timeout."""

    def report(obj: dict[str, Any]) -> None:
        st = obj.get("status") or {}
        print(f"{KINDS[kind].singular}/{name}: {st.get('phase') or 'Pending'}", file=sys.stderr)

    obj = kube.wait_done(kind, name, parse_duration(timeout), report)
    st = obj.get("status") or {}
    if st.get("phase") == "Failed":
        print(f"error: {KINDS[kind].singular}/{name} failed: {st.get('message', '')}", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


# ---------------------------------------------------------------------------------------------- results


def results(args: argparse.Namespace, kube: Kube) -> int:
    obj = kube.find(args.name, _kind(args))
    st = obj.get("status") or {}
    name = obj["metadata"]["name"]
    if st.get("phase") != "Succeeded":
        raise PluginError(f"{obj['kind']}/{name} has no results: phase {st.get('phase')} ({st.get('message', '')})")
    uri = ((st.get("results") or {}).get("uri") or "").rstrip("/")
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise PluginError(f"{out} exists and is not a directory (-o names the folder to write the files into)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PluginError(f"cannot make the folder {out}: {e.strerror or e}") from e
    campaign = obj["kind"] == "BoltzGenCampaign"
    base = f"{uri}/final" if campaign else uri

    def fetch(source: Source) -> list[Path]:
        if obj["kind"] == "BoltzScreen":
            return fetch_screen(source, out, st.get("results") or {}, everything=args.all_structures)
        return (fetch_campaign if campaign else fetch_prediction)(source, out)

    source: Source
    if uri.startswith("pvc://"):
        copied = Path(tempfile.mkdtemp(prefix="boltz-results-"))
        try:
            copy_out(kube, base, copied, image=args.reader_image)
            source = LocalSource(copied, base)
            files = fetch(source)
        finally:
            shutil.rmtree(copied, ignore_errors=True)
    elif uri.startswith("s3://"):
        store = ((obj.get("spec") or {}).get("results") or {}).get("s3") or {}
        client = s3_client(args.s3_endpoint or store.get("endpoint"), args.s3_region or store.get("region"))
        source = S3Source(client, base)
        files = fetch(source)
    else:
        raise PluginError(f"{obj['kind']}/{name} has no results URI in its status")
    checked = "the ranked table" if obj["kind"] == "BoltzScreen" else "result.json"
    print(f"{len(files)} files from {source.uri} -> {out} (checked against {checked})")
    return 0

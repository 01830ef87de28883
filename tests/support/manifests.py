"""Manifests for operator tests. `played(...)` gives pod annotations that make kwok play a worker's result
(its exit code, termination message and run time) through spec.podMetadata."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from boltz_contract import ErrorClass, FileSummary, RunSummary, TopDesign
from boltz_contract.msa import ChainMsa
from support.kwok import (
    EXIT_CODE_ANNOTATION,
    REASON_ANNOTATION,
    RUN_DURATION_ANNOTATION,
    TERMINATION_MESSAGE_ANNOTATION,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RESULTS_BUCKET_URI = "s3://results/boltz"


def played(
    summary: RunSummary | None = None,
    exit_code: int = 0,
    run_duration: str | None = None,
    only: str | None = None,
    reason: str | None = None,
) -> dict:
    """only: narrow the result to some pods of a Job: "index-<i>" (one index of an Indexed Job) or a component
    ("prepare", "predict", "design", "filter"; the run duration narrows to a component only); merge several with
    `merge_played`. reason: the container's termination reason (e.g. OOMKilled)."""
    suffix = f".{only}" if only else ""
    annotations = {EXIT_CODE_ANNOTATION + suffix: str(exit_code)}
    if summary is not None:
        annotations[TERMINATION_MESSAGE_ANNOTATION + suffix] = summary.to_termination_message()
    if run_duration:
        annotations[RUN_DURATION_ANNOTATION + ("" if only and only.startswith("index-") else suffix)] = run_duration
    if reason:
        annotations[REASON_ANNOTATION + suffix] = reason
    return {"annotations": annotations}


def merge_played(*parts: dict) -> dict:
    return {"annotations": {k: v for part in parts for k, v in part["annotations"].items()}}


def populate_ok() -> RunSummary:
    files = [
        FileSummary(path="boltz2/boltz2_conf.ckpt", bytes=2_300_000_000, sha256="a" * 64),
        FileSummary(path="boltz2/boltz2_aff.ckpt", bytes=1_800_000_000, sha256="b" * 64),
        FileSummary(path="boltz2/mols.tar", bytes=90_000_000, sha256="c" * 64),
    ]
    return RunSummary(ok=True, files=files, total_bytes=sum(f.bytes for f in files), duration_seconds=42.5)


def predict_ok(uri: str) -> RunSummary:
    return RunSummary(
        ok=True,
        results_uri=uri,
        confidence_score=0.91,
        ptm=0.88,
        iptm=0.84,
        complex_plddt=0.93,
        affinity_pred_value=-1.25,
        affinity_probability_binary=0.78,
        structures=["prediction_model_0.cif"],
    )


def failure(error_class: ErrorClass, message: str) -> tuple[RunSummary, int]:
    from boltz_contract import EXIT_CODE_OF

    return RunSummary(ok=False, error_class=error_class, message=message), int(EXIT_CODE_OF[error_class])


def model_cache(name: str = "default", pod_metadata: dict | None = None, bundles: list[str] | None = None) -> dict:
    cache = yaml.safe_load((EXAMPLES / "modelcache.yaml").read_text())
    cache["metadata"] = {"name": name}
    if bundles is not None:
        cache["spec"]["bundles"] = bundles
    cache["spec"].setdefault("storage", {})["accessModes"] = ["ReadWriteOnce"]
    cache["spec"]["populateJob"] = {"podMetadata": pod_metadata or played(populate_ok())}
    return cache


def prepare_ok(*msas: tuple[str, str]) -> RunSummary:
    """A prepare that passed, with (chain, source) per protein chain."""
    return RunSummary(
        ok=True,
        msas=[ChainMsa(chain=c, source=s) for c, s in msas],  # type: ignore[arg-type]
        msa_server_calls=sum(s == "fetched" for _, s in msas),
    )


PREPARED = played(prepare_ok(("A", "empty")), only="prepare", run_duration="100ms")


def prediction(name: str, pod_metadata: dict | None = None, prepare: dict | None = None, **spec_changes) -> dict:
    """examples/prediction.yaml as `name`; pod_metadata plays the GPU pod (and the prepare pod, for what `prepare`
    does not narrow to it: by default a prepare that passes at once)."""
    pred = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())
    pred["metadata"] = {"name": name}
    pred["spec"]["results"] = {
        "s3": {
            "uri": RESULTS_BUCKET_URI,
            "endpoint": "http://s3.example:8333",
            "credentialsSecretRef": {"name": "results-s3"},
        }
    }
    played_prepare = PREPARED if prepare is None else prepare
    if pod_metadata is not None or played_prepare:
        pred["spec"]["podMetadata"] = merge_played(pod_metadata or {"annotations": {}}, played_prepare)
    pred["spec"].update(copy.deepcopy(spec_changes))
    return pred


def shard_ok(index: int, designs: int) -> RunSummary:
    return RunSummary(
        ok=True, results_uri=f"s3://results/boltz/shards/{index}", shard_index=index, designs_completed=designs
    )


def filter_ok(shards: list[int], designs: int, selected: int) -> RunSummary:
    top = [
        TopDesign(
            rank=k,
            id=f"shard-{k:05d}_design_{k}",
            sequence="MKV" * (k + 10),
            metrics={"design_to_target_iptm": round(0.9 - k / 100, 4), "filter_rmsd": 1.0 + k / 10},
        )
        for k in range(1, min(selected, 10) + 1)
    ]
    return RunSummary(
        ok=True,
        results_uri="s3://results/boltz/final",
        designs_completed=designs,
        shards_merged=shards,
        designs_selected=selected,
        top_designs=top,
    )


def campaign(name: str, pod_metadata: dict | None = None, example: str = "campaign.yaml", **spec_changes) -> dict:
    body = yaml.safe_load((EXAMPLES / example).read_text())
    body["metadata"] = {"name": name}
    for sized in ("budget", "parallelism"):  # sized for the example's numDesigns: tests say what they need
        body["spec"].pop(sized, None)
    body["spec"]["results"] = {
        "s3": {
            "uri": RESULTS_BUCKET_URI,
            "endpoint": "http://s3.example:8333",
            "credentialsSecretRef": {"name": "results-s3"},
        }
    }
    if pod_metadata is not None:
        body["spec"]["podMetadata"] = pod_metadata
    body["spec"].update(copy.deepcopy(spec_changes))
    return body


def as_input(*objects: dict) -> str:
    return "\n---\n".join(json.dumps(o) for o in objects)

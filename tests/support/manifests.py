"""Manifests for operator tests. `played(...)` gives pod annotations that make kwok play a worker's result
(its exit code, termination message and run time) through spec.podMetadata."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from boltz_worker.contract import ErrorClass, FileSummary, RunSummary
from support.kwok import EXIT_CODE_ANNOTATION, RUN_DURATION_ANNOTATION, TERMINATION_MESSAGE_ANNOTATION

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
RESULTS_BUCKET_URI = "s3://results/boltz"


def played(summary: RunSummary | None = None, exit_code: int = 0, run_duration: str | None = None) -> dict:
    annotations = {EXIT_CODE_ANNOTATION: str(exit_code)}
    if summary is not None:
        annotations[TERMINATION_MESSAGE_ANNOTATION] = summary.to_termination_message()
    if run_duration:
        annotations[RUN_DURATION_ANNOTATION] = run_duration
    return {"annotations": annotations}


def populate_ok() -> RunSummary:
    files = [FileSummary(path="boltz2/boltz2_conf.ckpt", bytes=2_300_000_000, sha256="a" * 64),
             FileSummary(path="boltz2/boltz2_aff.ckpt", bytes=1_800_000_000, sha256="b" * 64),
             FileSummary(path="boltz2/mols.tar", bytes=90_000_000, sha256="c" * 64)]
    return RunSummary(ok=True, files=files, total_bytes=sum(f.bytes for f in files), duration_seconds=42.5)


def predict_ok(uri: str) -> RunSummary:
    return RunSummary(ok=True, results_uri=uri, confidence_score=0.91, ptm=0.88, iptm=0.84, complex_plddt=0.93,
                      affinity_pred_value=-1.25, affinity_probability_binary=0.78,
                      structures=["prediction_model_0.cif"])


def failure(error_class: ErrorClass, message: str) -> tuple[RunSummary, int]:
    from boltz_worker.contract import EXIT_CODE_OF

    return RunSummary(ok=False, error_class=error_class, message=message), int(EXIT_CODE_OF[error_class])


def model_cache(name: str = "default", pod_metadata: dict | None = None) -> dict:
    cache = yaml.safe_load((EXAMPLES / "modelcache.yaml").read_text())
    cache["metadata"] = {"name": name}
    cache["spec"].setdefault("storage", {})["accessModes"] = ["ReadWriteOnce"]
    cache["spec"]["populateJob"] = {"podMetadata": pod_metadata or played(populate_ok())}
    return cache


def prediction(name: str, pod_metadata: dict | None = None, **spec_changes) -> dict:
    pred = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())
    pred["metadata"] = {"name": name}
    pred["spec"]["results"] = {"s3": {"uri": RESULTS_BUCKET_URI, "endpoint": "http://s3.example:8333",
                                      "credentialsSecretRef": {"name": "results-s3"}}}
    if pod_metadata is not None:
        pred["spec"]["podMetadata"] = pod_metadata
    pred["spec"].update(copy.deepcopy(spec_changes))
    return pred


def as_input(*objects: dict) -> str:
    return "\n---\n".join(json.dumps(o) for o in objects)

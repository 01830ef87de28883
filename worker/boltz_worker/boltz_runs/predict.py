"""`boltz-worker predict`: check the input and the model cache, run boltz, judge its outputs, upload them."""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import time
from importlib import metadata
from pathlib import Path

import yaml

from boltz_contract import (
    ENV_WORK_DIR,
    REPORT_FILE,
    RESULT_FILE,
    WORK_DIR,
    ErrorClass,
    FileSummary,
    PredictionResult,
    PredictRun,
    RunSummary,
    WorkerError,
    boltz_input,
)
from boltz_worker.boltz_runs.boltz_command import (
    accelerator,
    boltz_executable,
    build_boltz_argv,
    child_env,
    container_cpus,
    container_memory_bytes,
    run_boltz,
)
from boltz_worker.boltz_runs.boltz_outputs import PredictionOutputs, classify, find_outputs
from boltz_worker.fileutil import sha256_file, utc_now
from boltz_worker.model_cache.model_catalog import BOLTZ2, unreadable_hint
from boltz_worker.results.results_store import ResultsStore, open_results_store
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
INPUT_DIR = "input"  # where the input YAML goes under the results URI


def predict(run: PredictRun, config_dir: Path) -> RunSummary:
    started, started_at = time.monotonic(), utc_now()
    check_record_id(run.record_id)
    source_yaml = config_dir / run.input_file
    doc = load_input(source_yaml)
    check_input(doc, run)
    store = open_results_store(run.results)  # a malformed target fails before the GPU is used
    cache_dir = Path(run.cache_dir)
    check_model_cache(cache_dir)
    fetch_downloads(run.downloads)
    _check_local_files(doc, config_dir)

    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR))
    work.mkdir(parents=True, exist_ok=True)
    staged = stage_input(source_yaml, doc, config_dir, work / f"{run.record_id}.yaml")
    out_dir = work / "out"
    argv = build_boltz_argv(
        boltz_executable(), staged, out_dir, cache_dir, run.options, container_cpus(), accelerator()
    )
    result = run_boltz(argv, cwd=work, env=child_env(cache_dir))

    outputs = find_outputs(out_dir, run.record_id)
    affinity_binder = run.affinity_binder or boltz_input.affinity_binder(doc)
    error = classify(result.returncode, result.log, outputs, affinity_binder, container_memory_bytes())
    if error:
        raise error
    upload_started = time.monotonic()
    prediction = upload_results(store, run, source_yaml, outputs, started_at)
    upload_seconds = time.monotonic() - upload_started
    report_started = time.monotonic()
    report = upload_report(store, outputs, prediction)
    prediction = prediction.model_copy(update={"report": report})
    timings = {
        "boltz": round(result.seconds, 1),
        "upload": round(upload_seconds, 1),
        "report": round(time.monotonic() - report_started, 1),
        "total": round(time.monotonic() - started, 1),
    }
    store.put_bytes(RESULT_FILE, _result_json(prediction, timings))  # last: its presence means complete
    log.info("results at %s", run.results.uri)
    return _summary(run, prediction)


# ---------------------------------------------------------------------------------------------- input


def check_record_id(record_id: str) -> None:
    """Raises WorkerError(INVALID_INPUT) unless `record_id` is a safe file name (boltz names outputs after it)."""
    if not RECORD_ID.match(record_id):
        raise WorkerError(ErrorClass.INVALID_INPUT, f"record_id {record_id!r} is not a safe file name")


def load_input(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"cannot read the input {path}: {e}") from e
    except yaml.YAMLError as e:
        raise WorkerError(ErrorClass.INVALID_INPUT, f"the input {path.name} is not valid YAML: {e}") from e
    return doc


def validate_input(doc: dict) -> None:
    """Raises WorkerError(INVALID_INPUT) with the first problem boltz_input.validate_boltz_input finds."""
    errors = boltz_input.validate_boltz_input(doc)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise WorkerError(ErrorClass.INVALID_INPUT, f"invalid Boltz input: {errors[0]}{more}")


def check_input(doc: dict, run: PredictRun) -> None:
    validate_input(doc)
    need_server = boltz_input.missing_msa_chains(doc)
    if need_server and not run.options.use_msa_server:
        raise WorkerError(
            ErrorClass.INVALID_INPUT,
            f"protein chains {', '.join(need_server)} have no msa and the MSA server is off: "
            "give an msa (or 'empty') or turn the MSA server on",
        )


def _check_local_files(doc: dict, config_dir: Path) -> None:
    for path in boltz_input.local_paths(doc):
        if not (config_dir / path).is_file():  # an absolute path stays as it is under `/`
            raise WorkerError(
                ErrorClass.INVALID_INPUT,
                f"the input refers to {path}, which is neither in the run's files nor among its downloads",
            )


def stage_input(source_yaml: Path, doc: dict, config_dir: Path, dest: Path) -> Path:
    """Copy the input where boltz may write beside it, as `<record_id>.yaml` (boltz names outputs by the stem).

    Relative MSA/template paths are made absolute (against the run's files), since boltz runs in the work dir.
    """
    absolute = _absolutize_paths(doc, config_dir)
    if absolute is None:
        shutil.copyfile(source_yaml, dest)
    else:
        dest.write_text(yaml.safe_dump(absolute, sort_keys=False))
    return dest


def _absolutize_paths(doc: dict, base: Path) -> dict | None:
    """A copy of `doc` with relative file paths resolved against `base`, or None when there are none."""
    if not any(not Path(p).is_absolute() for p in boltz_input.local_paths(doc)):
        return None
    doc = copy.deepcopy(doc)
    for item in doc.get("sequences", []):
        body = item.get("protein")
        msa = body.get("msa") if isinstance(body, dict) else None
        if isinstance(msa, str) and msa != boltz_input.MSA_EMPTY and msa and not Path(msa).is_absolute():
            body["msa"] = str(base / msa)
    for template in doc.get("templates") or []:
        for key in ("cif", "pdb"):
            if isinstance(template.get(key), str) and not Path(template[key]).is_absolute():
                template[key] = str(base / template[key])
    return doc


def check_model_cache(cache_dir: Path) -> None:
    problems = BOLTZ2.cache_problems(cache_dir)
    if problems:
        raise WorkerError(
            ErrorClass.MODEL_CACHE_UNUSABLE,
            f"model cache at {cache_dir} is unusable ({'; '.join(problems)}): "
            "is its BoltzModelCache Ready and mounted there?" + unreadable_hint(problems),
        )


# ---------------------------------------------------------------------------------------------- results


def upload_results(
    store: ResultsStore, run: PredictRun, source_yaml: Path, outputs: PredictionOutputs, started_at: str
) -> PredictionResult:
    uploaded = [_upload(store, path.relative_to(outputs.directory).as_posix(), path) for path in outputs.files]
    uploaded.append(_upload(store, f"{INPUT_DIR}/{run.record_id}.yaml", source_yaml))
    return PredictionResult(
        record_id=run.record_id,
        results_uri=run.results.uri,
        files=uploaded,
        structures=[p.name for p in outputs.structures],
        confidence=[outputs.confidence(rank) for rank in range(len(outputs.confidences))],
        affinity=outputs.affinity_values(),
        boltz_version=_version("boltz"),
        worker_version=_version("boltz-worker"),
        started_at=started_at,
        finished_at=utc_now(),
    )


def upload_report(store: ResultsStore, outputs: PredictionOutputs, prediction: PredictionResult) -> str | None:
    """Write and upload the HTML report; its path relative to the results, or None when it could not be made.

    A report is a view of results already stored: a failure to draw one is logged and never fails the run.
    """
    try:
        from boltz_worker.report.prediction import prediction_report

        html = prediction_report(outputs.directory, prediction)
        store.put_bytes(REPORT_FILE, html.encode())
    except Exception:  # noqa: BLE001 (see the docstring)
        log.exception("the HTML report could not be made; the results are complete without it")
        return None
    log.info("report: %s/%s (%d bytes)", prediction.results_uri, REPORT_FILE, len(html.encode()))
    return REPORT_FILE


def _upload(store: ResultsStore, rel: str, path: Path) -> FileSummary:
    store.put_file(rel, path)
    return FileSummary(path=rel, bytes=path.stat().st_size, sha256=sha256_file(path))


def _result_json(prediction: PredictionResult, timings: dict[str, float]) -> bytes:
    final = prediction.model_copy(update={"timings": timings, "finished_at": utc_now()})
    return final.model_dump_json(indent=2).encode() + b"\n"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _summary(run: PredictRun, prediction: PredictionResult) -> RunSummary:
    best = prediction.confidence[0] if prediction.confidence else {}
    affinity = prediction.affinity or {}
    return RunSummary(
        ok=True,
        results_uri=run.results.uri,
        confidence_score=best.get("confidence_score"),
        ptm=best.get("ptm"),
        iptm=best.get("iptm"),
        complex_plddt=best.get("complex_plddt"),
        affinity_pred_value=affinity.get("affinity_pred_value"),
        affinity_probability_binary=affinity.get("affinity_probability_binary"),
        structures=prediction.structures,
        report=prediction.report,
    )

"""`boltz-worker prepare`: everything about a prediction that needs no GPU, before its GPU Job exists.

1. the input read and validated, the S3 downloads fetched, every file it names present;
2. every given MSA file checked as boltz reads it (msa_files);
3. the MSAs of run.msa_request looked up in the MSA store (msa_store), fetched from the server only on a miss
   (by boltz's own client, bounded and counted: server_requests) and stored;
4. boltz's own parsing and input processing on the input staged with every MSA in place (boltz_child, run by the
   python that has boltz: $BOLTZ_PYTHON, default this one).
Returns RunSummary(ok, msas=[ChainMsa per protein chain], msa_server_calls, duration_seconds).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from boltz_contract import ENV_WORK_DIR, WORK_DIR, ErrorClass, PrepareRun, RunSummary, WorkerError, shorten_middle
from boltz_contract.boltz_input import MSA_EMPTY
from boltz_contract.msa import ChainMsa, MsaSource, msa_file
from boltz_worker.boltz_runs.boltz_command import container_memory_bytes
from boltz_worker.boltz_runs.predict import check_record_id, load_input, validate_input
from boltz_worker.fileutil import human_bytes
from boltz_worker.prepare.msa_files import DEFAULT_MAX_MSA_SEQS, check_msa_file
from boltz_worker.prepare.msa_request import given_msas, protein_entities, requested_entities, with_msas
from boltz_worker.prepare.msa_store import open_msa_store
from boltz_worker.results.s3_inputs import fetch_downloads

log = logging.getLogger(__name__)

ENV_BOLTZ_PYTHON = "BOLTZ_PYTHON"  # the python that imports boltz (default: the worker's own)
CHILD_MODULE = "boltz_worker.prepare.boltz_child"
MESSAGE_LIMIT = 1500  # characters of a message prepare reports (the termination message holds 4 KiB)


def prepare(run: PrepareRun, config_dir: Path) -> RunSummary:
    """Run the prepare steps for `run`, whose input and files sit in `config_dir`.

    Raises WorkerError: INVALID_INPUT (the input, a file or an MSA that boltz would refuse or silently drop),
    MSA_SERVER_UNAVAILABLE (the server refused past run.msa_server_attempts), RESULTS_STORE_ERROR (the MSA store),
    MEMORY_LIMIT_EXCEEDED (boltz's process was killed by SIGKILL), INTERNAL (the run disagrees with its input)."""
    started = time.monotonic()
    check_record_id(run.record_id)
    source = config_dir / run.input_file
    doc = load_input(source)
    validate_input(doc)
    wanted = requested_entities(doc, run)
    fetch_downloads(run.downloads)
    check_files(doc, config_dir, run.options.max_msa_seqs)

    work = Path(os.environ.get(ENV_WORK_DIR, WORK_DIR)) / "prepare"
    shutil.rmtree(work, ignore_errors=True)  # boltz's MSA client reuses a result it finds there (out.tar.gz)
    work.mkdir(parents=True)
    msa_paths: list[Path] = []
    source_of_requested: MsaSource = "reused"
    fetch = None
    if wanted:
        assert run.msa_request is not None and run.msa_store is not None  # requested_entities checked them
        store = open_msa_store(run.msa_store)
        key = run.msa_request.key
        found = store.get(key, len(wanted), work / "msa-store" / key)
        if found is not None:
            log.info("MSAs of chains %s found in the MSA store at %s", run.msa_request.chains, store.uri)
            msa_paths = found
        else:
            source_of_requested = "fetched"
            msa_paths = [work / "msa" / msa_file(i) for i in range(len(wanted))]
            fetch = {
                "sequences": [e.sequence for e in wanted], "msa_dir": str(work / "msa"),
                "server_url": run.options.msa_server_url, "pairing_strategy": run.options.msa_pairing_strategy,
                "api_key_header": run.options.msa_api_key_header, "attempts": run.msa_server_attempts,
                "backoff_seconds": run.msa_server_backoff_seconds,
            }  # fmt: skip
    staged = work / f"{run.record_id}.yaml"
    staged_doc = with_msas(doc, {e.sequence: p for e, p in zip(wanted, msa_paths)}, config_dir)
    staged.write_text(yaml.safe_dump(staged_doc, sort_keys=False))

    answer = run_child({
        "input": str(staged), "mol_dir": str(Path(run.cache_dir) / "mols"), "work_dir": str(work / "processed"),
        "max_msa_seqs": run.options.max_msa_seqs or DEFAULT_MAX_MSA_SEQS, "fetch": fetch,
    }, work)  # fmt: skip
    if fetch is not None and answer.get("fetched"):  # stored even when the input then fails: the search is paid
        assert run.msa_request is not None and run.msa_store is not None
        store.put(run.msa_request.key, [Path(p) for p in answer["fetched"]])
        log.info("MSAs of chains %s stored at %s", run.msa_request.chains, run.msa_store.key_uri(run.msa_request.key))
    if not answer["ok"]:
        raise WorkerError(ErrorClass(answer["error_class"]), shorten_middle(answer["message"], MESSAGE_LIMIT))
    log.info("prepare steps took %s s", answer.get("seconds"))
    return RunSummary(
        ok=True,
        msas=chain_msas(doc, {e.sequence for e in wanted}, source_of_requested),
        msa_server_calls=answer["msa_server_calls"],
        duration_seconds=round(time.monotonic() - started, 1),
    )


def check_files(doc: dict, config_dir: Path, max_msa_seqs: int | None) -> None:
    """Every file the input names exists; every given MSA passes msa_files.check_msa_file."""
    from boltz_contract.boltz_input import local_paths

    for path in local_paths(doc):
        if not (config_dir / path).is_file():  # an absolute path stays as it is under `/`
            raise WorkerError(ErrorClass.INVALID_INPUT,
                              f"the input refers to {path}, which is neither in the run's files nor among its "
                              "downloads")  # fmt: skip
    for entity in given_msas(doc):
        assert entity.msa is not None
        check_msa_file(config_dir / entity.msa, entity.chains, entity.sequence, entity.modifications,
                       max_msa_seqs, shown_as=entity.msa)  # fmt: skip


def chain_msas(doc: dict, requested: set[str], source_of_requested: MsaSource) -> list[ChainMsa]:
    """Where each protein chain's MSA came from, in the input's chain order."""
    msas = []
    for entity in protein_entities(doc):
        if entity.sequence in requested:
            source: MsaSource = source_of_requested
        else:
            source = "empty" if entity.msa == MSA_EMPTY else "given"
        msas += [ChainMsa(chain=c, source=source) for c in entity.chains]
    return msas


def run_child(request: dict, work: Path) -> dict:
    """boltz_child with the python that has boltz; its output goes to our log. Returns its answer.

    Raises WorkerError(MEMORY_LIMIT_EXCEEDED) when it was killed by SIGKILL (the cgroup's OOM killer),
    WorkerError(INTERNAL) when it died without an answer."""
    request_file, answer_file = work / "child-request.json", work / "child-answer.json"
    request_file.write_text(json.dumps(request))
    answer_file.unlink(missing_ok=True)
    python = os.environ.get(ENV_BOLTZ_PYTHON) or sys.executable
    env = dict(os.environ)
    if os.environ.get(ENV_BOLTZ_PYTHON):  # another python: let it find this boltz_worker (it has none of its own)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    argv = [python, "-m", CHILD_MODULE, str(request_file), str(answer_file)]
    log.info("running boltz's input processing: %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, env=env, stdout=sys.stderr, stderr=sys.stderr, check=False)
    except OSError as e:
        raise WorkerError(ErrorClass.INTERNAL, f"cannot start {python}: {e}") from e
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log.info("boltz's input processing exited %d; peak memory %.0f MiB (the worker's own: %.0f MiB)",
             proc.returncode, peak / 2**20, own / 2**20)  # fmt: skip
    if proc.returncode == -9:
        limit = container_memory_bytes()
        raise WorkerError(ErrorClass.MEMORY_LIMIT_EXCEEDED,
                          f"boltz's input processing was killed (SIGKILL) at {human_bytes(peak)}, most likely by the "
                          f"container's memory limit ({human_bytes(limit) if limit else 'none found'}): raise the "
                          "prepare Job's memory (the chart value prepare.memory)")  # fmt: skip
    if not answer_file.is_file():
        raise WorkerError(ErrorClass.INTERNAL, f"boltz's input processing exited {proc.returncode} without an "
                          "answer (its traceback is in the log above)")  # fmt: skip
    return json.loads(answer_file.read_text())

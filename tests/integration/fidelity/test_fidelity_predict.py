"""A real `boltz predict`, run by the real worker, on CPU, from a read-only model cache.

The operator's path up to the pod: spec -> render_boltz_input -> build_run -> the ConfigMap (run.json + the Boltz
YAML) -> files projected beside it. Then `boltz-worker predict` (this project's CLI, in the project venv) runs
boltz 2.2.1 from its own venv (BOLTZ_EXECUTABLE) with BOLTZ_WORKER_ACCELERATOR=cpu. The model cache holds
random-initialised small Boltz-2 checkpoints (small_boltz2.py) and canonical molecules generated from biotite's
CCD, in the layout populate writes, and boltz sees it through a read-only bind mount where the machine allows
one (unshare), else read-only permissions (non-root), else the test checks the cache is unchanged afterwards.
Predictions are meaningless; what is checked is the contract: accepted inputs and flags, outputs and their keys,
the worker's classification, results and termination message, and nothing written to the cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from boltz_contract import REPORT_FILE, ExitCode, PredictionResult, ResultsTarget, RunSummary
from boltz_operator.api import BoltzPredictionSpec
from boltz_operator.builders.common import OwnerRef
from boltz_operator.builders.prediction import KIND as PREDICTION_KIND
from boltz_operator.builders.prediction import build_configmap, build_run
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.render import render_boltz_input, validate_prediction
from support.fake_boltz import AFFINITY_KEYS, CONFIDENCE_KEYS
from support.fidelity import CPU_OPTIONS, example_spec, write_msas
from support.report import assert_clean, assert_plots_drawn, canvas, open_report, plddt_coloured

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def files_spec() -> dict:
    """MSA files (A3M and CSV, ConfigMap keys), a CCD ligand with affinity, a pocket, PDB output, a seed."""
    return {
        "sequences": [
            {"protein": {"ids": ["A"], "sequence": "MKTAYIAKQRQISFVKSHFSRQ",
                         "msa": {"configMapKeyRef": {"name": "msas", "key": "a.a3m"}}}},
            {"protein": {"ids": ["B"], "sequence": "GSHMLEDPVAGCKLW",
                         "msa": {"configMapKeyRef": {"name": "msas", "key": "b.csv"}}}},
            {"ligand": {"ids": ["C"], "ccd": "SAH"}},
        ],
        "constraints": [{"pocket": {"binder": "C", "contacts": [{"chain": "A", "residue": 3}], "maxDistance": 10}}],
        "affinity": {"binder": "C"},
        # Not usePotentials: on CPU boltz 2.2.1's potentials fail under bf16 autocast ("Index put requires the
        # source and destination dtypes match"); its autocast guard covers CUDA only.
        "options": {**CPU_OPTIONS, "outputFormat": "pdb", "seed": 7},
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------- the model cache


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(directory.rglob("*"))
    }


def read_only_mode(probe_dir: Path) -> str:
    """How this machine can keep boltz from writing to the cache: 'mount', 'permissions' or 'none'."""
    target = probe_dir / "probe"
    target.mkdir(exist_ok=True)
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && ! touch "$0/x" 2>/dev/null'
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script, str(target)], capture_output=True, timeout=30)
        if proc.returncode == 0:
            return "mount"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "permissions" if os.geteuid() != 0 else "none"


# ---------------------------------------------------------------------------------------------- a run


def run_prediction(name: str, spec_body: dict, boltz_python: Path, cache: Path, root: Path):
    """Everything from the spec to the worker's exit; returns (exit code, summary, results dir, output)."""
    spec = BoltzPredictionSpec.model_validate(spec_body)
    config, work, results = root / "config", root / "work", root / "results"
    inputs = config / "inputs"  # where the Job projects ConfigMap keys, beside run.json
    for d in (inputs, work, results):
        d.mkdir(parents=True)
    assert validate_prediction(spec, inputs_dir=str(inputs), downloads_dir=str(work / "inputs")) == []
    doc, files = render_boltz_input(spec, str(inputs), str(work / "inputs"))
    assert all(f.source == "configMap" for f in files)
    placement = ResultsPlacement(target=ResultsTarget(uri=f"pvc://results/default/{name}", local_dir=str(results)))
    run = build_run(OwnerRef(PREDICTION_KIND, "default", name, "0000"), spec, files, placement)
    run = run.model_copy(update={"cache_dir": str(cache)})  # the PVC is mounted at /models/boltz2 in a pod
    configmap = build_configmap(OwnerRef(PREDICTION_KIND, "default", name, "0000"), doc, run)
    for key, text in configmap.data.items():
        (config / key).write_text(text)
    (config / "run.json").write_text(run.model_dump_json())  # as build_configmap wrote it, with the local cache
    write_msas(doc)

    termination = root / "termination-log"
    env = {
        **os.environ,
        "BOLTZ_EXECUTABLE": str(boltz_python.parent / "boltz"),
        "BOLTZ_WORKER_ACCELERATOR": "cpu",
        "BOLTZ_WORK_DIR": str(work),
        "BOLTZ_WORKER_CPUS": "2",
        "HOME": str(work / "home"),
    }
    command = [str(Path(sys.executable).parent / "boltz-worker"), "predict", "--run", str(config / "run.json"),
               "--termination-log", str(termination)]  # fmt: skip
    mode = read_only_mode(root)
    if mode == "mount":
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", script, str(cache), *command]
    elif mode == "permissions":
        for path in [cache, *cache.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    before = snapshot(cache)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500)
    finally:
        if mode == "permissions":
            for path in [cache, *cache.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
    assert snapshot(cache) == before, "the model cache changed during the run"
    output = proc.stdout + proc.stderr
    summary = RunSummary.from_termination_message(termination.read_text()) if termination.is_file() else None
    return proc.returncode, summary, results, output, mode


@pytest.fixture(scope="module")
def example_run(boltz_python, model_cache, tmp_path_factory):
    return run_prediction("egfr-erlotinib", example_spec(), boltz_python, model_cache,
                          tmp_path_factory.mktemp("example-run"))  # fmt: skip


@pytest.fixture(scope="module")
def files_run(boltz_python, model_cache, tmp_path_factory):
    return run_prediction("msa-ccd-pocket", files_spec(), boltz_python, model_cache,
                          tmp_path_factory.mktemp("files-run"))  # fmt: skip


# ---------------------------------------------------------------------------------------------- checks


def check_success(run, record: str, structure_suffix: str) -> tuple[RunSummary, PredictionResult]:
    code, summary, results, output, _ = run
    assert code == ExitCode.OK, f"worker exited {code}:\n{output[-6000:]}"
    assert summary is not None and summary.ok, summary
    result = PredictionResult.model_validate_json((results / "result.json").read_text())
    assert result.record_id == record
    assert result.structures and all(s.endswith(structure_suffix) for s in result.structures)
    uploaded = {f.path for f in result.files}
    assert set(result.structures) <= uploaded
    for f in result.files:  # every file the manifest lists is there, with its size
        assert (results / f.path).stat().st_size == f.bytes
    assert set(result.confidence[0]) >= CONFIDENCE_KEYS
    assert set(result.affinity or {}) >= AFFINITY_KEYS
    assert summary.confidence_score == result.confidence[0]["confidence_score"]
    assert summary.affinity_pred_value == result.affinity["affinity_pred_value"]
    assert result.boltz_version == "2.2.1" or result.boltz_version is None
    return summary, result


def test_the_example_runs_through_the_worker_and_real_boltz(example_run):
    summary, result = check_success(example_run, "egfr-erlotinib", ".cif")
    assert summary.ptm is not None and summary.iptm is not None and summary.complex_plddt is not None
    assert 0.0 <= summary.affinity_probability_binary <= 1.0


def test_msa_files_ccd_ligand_and_pocket_run_through_real_boltz(files_run):
    _, result = check_success(files_run, "msa-ccd-pocket", ".pdb")
    assert result.affinity is not None


@pytest.mark.parametrize("run", ["example_run", "files_run"])
def test_boltz_runs_from_a_read_only_model_cache(run, request):
    """The runs above succeeded with the cache read-only (run_prediction also checks it is byte-for-byte unchanged)."""
    code, *_, output, mode = request.getfixturevalue(run)
    assert code == ExitCode.OK
    if mode == "none":
        pytest.skip("no read-only mount or permissions possible here (root without unshare); unchanged-checked only")
    assert "Read-only file system" not in output and "Permission denied" not in output


def test_the_report_of_a_real_run_opens_offline_in_chromium(example_run, browser):
    """The worker wrote report.html beside the real boltz outputs; Chromium draws it from file:// with no network."""
    _, summary, results, _, _ = example_run
    result = PredictionResult.model_validate_json((results / "result.json").read_text())
    assert summary.report == result.report == REPORT_FILE
    page = results / REPORT_FILE
    assert page.stat().st_size > 1_000_000  # plotly.js and 3Dmol.js are inlined
    open_report(browser, page)
    assert_plots_drawn(browser, "plddt", "pae")
    assert canvas(browser, "structure").fraction(plddt_coloured) > 0.002
    assert_clean(browser)

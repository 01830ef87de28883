"""The worker IMAGES (Dockerfile.worker, targets boltz and boltzgen) built from this checkout and run as the
operator's Jobs run them: the Job built by the operator's own builders, its container's command, env, volumes and
security context applied by tests/support/images.py (read-only root filesystem, uid 1000, fsGroup, emptyDirs as
tmpfs, the model cache bind-mounted read-only). The boltz image runs a real CPU prediction with the small random
checkpoints and generated molecules of the fidelity tests, and populates a cache from a loopback Hugging Face
look-alike; the boltzgen image holds a consistent boltzgen whose own spec check the worker reaches.

The only additions to the Job's environment are for a machine without a GPU: BOLTZ_WORKER_ACCELERATOR=cpu and the
CPU count.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from kubernetes import client

import boltz_contract as contract
from boltz_contract import ErrorClass, ExitCode, PredictionResult, RunSummary
from boltz_operator.api import BoltzModelCacheSpec, BoltzPredictionSpec
from boltz_operator.api.campaign import BoltzGenCampaignSpec
from boltz_operator.api.common import ResultsStore
from boltz_operator.builders import campaign as campaign_builders
from boltz_operator.builders import modelcache as cache_builders
from boltz_operator.builders.common import CONFIG_VOLUME, MODELS_VOLUME, OwnerRef
from boltz_operator.builders.prediction import KIND as PREDICTION_KIND
from boltz_operator.builders.prediction import build_configmap, build_job, build_run
from boltz_operator.builders.results import RESULTS_VOLUME, place_results
from boltz_operator.config import DefaultResultsStore, OperatorConfig
from boltz_operator.render import render_boltz_input, render_design_spec
from boltz_worker.model_cache.model_catalog import BOLTZGEN
from support.fake_boltz import AFFINITY_KEYS, CONFIDENCE_KEYS
from support.fidelity import TARGET, example_spec
from support.images import BUILD_SECONDS, ImageRoot, Run, build_image, pod_run, project
from support.worker import FakeHub, make_model_files, serving

CPU_ONLY = {"BOLTZ_WORKER_ACCELERATOR": "cpu", "BOLTZ_WORKER_CPUS": "2"}
SERIALIZE = client.ApiClient().sanitize_for_serialization


@pytest.fixture(scope="module")
def boltz_image(tmp_path_factory) -> str:
    ref = build_image("worker-boltz", tmp_path_factory.mktemp("images"))
    print(f"\n[images] worker-boltz built in {BUILD_SECONDS['worker-boltz']} s")
    return ref


def prediction_pod(name: str, spec_body: dict, config_dir: Path) -> dict:
    """The predict Job's pod spec, as the operator builds it, with its config volume projected into `config_dir`."""
    spec = BoltzPredictionSpec.model_validate(spec_body)
    doc, files = render_boltz_input(spec, f"{contract.CONFIG_DIR}/inputs", f"{contract.WORK_DIR}/inputs")
    assert files == []  # the example needs no input files
    ref = OwnerRef(PREDICTION_KIND, "lab", name, "0000")
    store = ResultsStore.model_validate({"pvc": {"claimName": "results"}})
    placement = place_results(store, DefaultResultsStore(), ref.namespace, ref.name, ref.uid)
    run = build_run(ref, spec, files, placement)
    configmap = build_configmap(ref, doc, run)
    job = build_job(ref, spec, run, files, placement, cache_claim="default-models", config=OperatorConfig())
    pod = SERIALIZE(job)["spec"]["template"]["spec"]
    project(pod, CONFIG_VOLUME, {configmap.metadata.name: configmap.data}, config_dir)
    return pod


@pytest.mark.parametrize("arbitrary_uid", [False, True], ids=["job-uid-1000", "arbitrary-uid-no-passwd-entry"])
def test_boltz_image_runs_a_real_prediction_from_a_read_only_cache(boltz_image, model_cache, tmp_path, arbitrary_uid):
    pod = prediction_pod("egfr-erlotinib", example_spec(), tmp_path / "config")
    models, results, termination = tmp_path / "models", tmp_path / "results", tmp_path / "termination-log"
    models.mkdir(), results.mkdir(), termination.touch()
    shutil.copytree(model_cache, models / "boltz2")  # the PVC as populate leaves it: <models>/boltz2/...
    results.chmod(0o777)  # a fresh PVC made writable for the pod's uid (fsGroup does that in a cluster)
    args, run = pod_run(pod, {CONFIG_VOLUME: tmp_path / "config", MODELS_VOLUME: models, RESULTS_VOLUME: results},
                        extra_env=CPU_ONLY)  # fmt: skip
    run.termination_log = termination
    assert run.user == "1000:1000" and run.groups == (1000,)
    assert {"/work", "/tmp"} <= set(run.tmpfs)
    assert [b.read_only for b in run.binds if b.target == contract.MODELS_DIR] == [True]
    if arbitrary_uid:  # as OpenShift runs it: a uid from the namespace's range, gid 0, no USER or LOGNAME
        run.user, run.unset = "1000730000:0", ("USER", "LOGNAME")
    uid = int(run.user.split(":")[0])

    started = time.monotonic()
    with ImageRoot(boltz_image) as image:
        assert str(uid) not in image.read("/etc/passwd").split(":")
        proc = image.run(args, run, timeout=1500)
    print(
        f"\n[images] boltz-worker predict in the image as {run.user}: exit {proc.returncode} in "
        f"{time.monotonic() - started:.1f} s"
    )
    assert proc.returncode == ExitCode.OK, (proc.stdout + proc.stderr)[-6000:]

    summary = RunSummary.from_termination_message(termination.read_text())
    assert summary.ok and summary.confidence_score is not None and summary.affinity_pred_value is not None
    [result_json] = results.rglob(contract.RESULT_FILE)
    result = PredictionResult.model_validate_json(result_json.read_text())
    assert set(result.confidence[0]) >= CONFIDENCE_KEYS and set(result.affinity or {}) >= AFFINITY_KEYS
    for f in result.files:
        assert (result_json.parent / f.path).stat().st_size == f.bytes
    assert all(p.stat().st_uid == uid for p in results.rglob("*"))  # written by the pod's uid, not root
    output = proc.stdout + proc.stderr
    assert "Read-only file system" not in output and "Permission denied" not in output


def test_a_cache_the_worker_cannot_read_fails_at_once_naming_the_file_and_the_uid(boltz_image, model_cache, tmp_path):
    pod = prediction_pod("unreadable", example_spec(), tmp_path / "config")
    models, results, termination = tmp_path / "models", tmp_path / "results", tmp_path / "termination-log"
    models.mkdir(), results.mkdir(), termination.touch()
    shutil.copytree(model_cache, models / "boltz2")
    (models / "boltz2" / "boltz2_conf.ckpt").chmod(0o600)  # root's, unreadable to uid 1000 and group 1000
    args, run = pod_run(pod, {CONFIG_VOLUME: tmp_path / "config", MODELS_VOLUME: models, RESULTS_VOLUME: results},
                        extra_env=CPU_ONLY)  # fmt: skip
    run.termination_log = termination
    with ImageRoot(boltz_image) as image:
        proc = image.run(args, run, timeout=300)
    assert proc.returncode == ExitCode.MODEL_CACHE_UNUSABLE, (proc.stdout + proc.stderr)[-4000:]
    summary = RunSummary.from_termination_message(termination.read_text())
    assert summary.error_class == ErrorClass.MODEL_CACHE_UNUSABLE
    assert "boltz2_conf.ckpt is not readable" in summary.message
    assert "uid 1000, gid 1000, groups 1000" not in summary.message  # gid 1000 is not repeated as a group
    assert "uid 1000, gid 1000" in summary.message and "fsGroup" in summary.message


def test_boltz_image_populates_a_cache_from_a_hugging_face_mirror(boltz_image, tmp_path):
    files = make_model_files()
    spec = BoltzModelCacheSpec.model_validate({"source": {"huggingFace": {"endpoint": "http://127.0.0.1:1"}}})
    ref = OwnerRef(cache_builders.KIND, "lab", "default", "0000", 1)
    models, config, termination = tmp_path / "models", tmp_path / "config", tmp_path / "termination-log"
    models.mkdir()
    models.chmod(0o777)  # a fresh PVC made writable for the pod's uid (fsGroup does that in a cluster)
    with serving(FakeHub(files=dict(files), repos={})) as hub:
        spec = spec.model_copy(update={"source": BoltzModelCacheSpec.model_validate(
            {"source": {"huggingFace": {"endpoint": hub.url}}}).source})  # fmt: skip
        configmap = cache_builders.build_configmap(ref, cache_builders.build_run(spec))
        pod = SERIALIZE(cache_builders.build_job(ref, spec, OperatorConfig()))["spec"]["template"]["spec"]
        project(pod, CONFIG_VOLUME, {configmap.metadata.name: configmap.data}, config)
        args, run = pod_run(pod, {CONFIG_VOLUME: config, MODELS_VOLUME: models})
        run.termination_log = termination
        with ImageRoot(boltz_image) as image:
            proc = image.run(args, run, timeout=300)
    assert proc.returncode == ExitCode.OK, (proc.stdout + proc.stderr)[-4000:]
    summary = RunSummary.from_termination_message(termination.read_text())
    assert summary.ok and summary.message.startswith("3 downloaded")
    for name, content in files.items():
        assert (models / "boltz2" / name).read_bytes() == content
    # Readable by any reader uid: public weights on a volume others mount read-only.
    for path in models.rglob("*"):
        assert path.stat().st_mode & (0o555 if path.is_dir() else 0o444) == (0o555 if path.is_dir() else 0o444), path


# screen-rank runs in this image: pyarrow must import beside boltz's numpy<2 (pyarrow 26 refuses numpy 1.x). The
# check reads the file back single-threaded: in this image a threaded read_table left pyarrow's thread pool to die
# at interpreter exit (SIGSEGV, "terminate called without an active exception") in 7 of 12 runs; screen-rank only
# writes, and writing 2,001 rows ended clean 30 times of 30.
PARQUET_IN_IMAGE = """
import json, numpy, pyarrow as pa, pyarrow.parquet as pq
from boltz_contract.screen import LigandRow
from boltz_worker.screen_runs.table import rows_to_parquet
data = rows_to_parquet([LigandRow(id="a", iptm=0.5), LigandRow(id="b", error="e")], {"rank": [1, 2]})
table = pq.read_table(pa.BufferReader(data), use_threads=False)
print(json.dumps([numpy.__version__, table.column("rank").to_pylist(), table.column("iptm").to_pylist()]))
"""


def test_boltz_image_writes_the_ranked_parquet_beside_boltz_s_numpy(boltz_image):
    with ImageRoot(boltz_image) as image:
        proc = image.run(["-c", PARQUET_IN_IMAGE], Run(entrypoint=["python"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    numpy_version, ranks, iptm = json.loads(proc.stdout.strip().splitlines()[-1])
    assert numpy_version.startswith("1.") and ranks == [1, 2] and iptm == [0.5, None]


# ---------------------------------------------------------------------------------------------- boltzgen


@pytest.fixture(scope="module")
def boltzgen_image(tmp_path_factory) -> str:
    ref = build_image("worker-boltzgen", tmp_path_factory.mktemp("images"))
    print(f"\n[images] worker-boltzgen built in {BUILD_SECONDS['worker-boltzgen']} s")
    return ref


def test_boltzgen_image_is_consistent_and_runs_boltzgen(boltzgen_image):
    with ImageRoot(boltzgen_image) as image:
        check = image.run(["check"], Run(entrypoint=["pip"]))
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No broken requirements found" in check.stdout
        help_ = image.run(["--help"], Run(entrypoint=["boltzgen"]))
        assert help_.returncode == 0, help_.stdout + help_.stderr
        assert "run" in help_.stdout and "check" in help_.stdout


def design_pod(include_chain: str, config_dir: Path) -> dict:
    """Shard 0 of a one-shard campaign's design Job, as the operator builds it: a binder against chain
    `include_chain` of the 3CH4 fixture (a ConfigMap key), its config volume projected into `config_dir`."""
    spec = BoltzGenCampaignSpec.model_validate({
        "designSpec": {"entities": [
            {"protein": {"ids": ["B"], "sequence": "12..16"}},
            {"file": {"configMapKeyRef": {"name": "target", "key": "3ch4.cif"},
                      "include": [{"chain": {"id": include_chain}}]}}]},
        "numDesigns": 1, "shards": 1, "results": {"pvc": {"claimName": "results"}}})  # fmt: skip
    ref = OwnerRef(campaign_builders.KIND, "lab", "binder", "0000")
    doc, files = render_design_spec(spec.design_spec)
    placement = place_results(spec.results, DefaultResultsStore(), ref.namespace, ref.name, ref.uid)
    configmap = campaign_builders.build_configmap(ref, doc, campaign_builders.build_design_run(spec, files, placement),
                                                  campaign_builders.build_filter_run(spec, files, placement))  # fmt: skip
    job = campaign_builders.build_design_job(ref, spec, files, placement, "boltzgen-models", OperatorConfig())
    pod = SERIALIZE(job)["spec"]["template"]["spec"]
    project(pod, CONFIG_VOLUME, {configmap.metadata.name: configmap.data, "target": {"3ch4.cif": TARGET.read_text()}},
            config_dir)  # fmt: skip
    return pod


@pytest.fixture(scope="module")
def boltzgen_models(boltzgen_mols, tmp_path_factory) -> Path:
    """<models>/boltzgen with boltzgen's molecules (generated from biotite's CCD, zipped as mols.zip is) and
    placeholder checkpoints: enough for boltzgen's spec check, which runs before any model loads."""
    models = tmp_path_factory.mktemp("boltzgen-models")
    models.chmod(0o755)  # as populate leaves a cache: readable by every uid (mktemp makes it 0700)
    bundle = models / BOLTZGEN.name
    bundle.mkdir()
    for name in BOLTZGEN.files:
        if name != "mols.zip":
            (bundle / name).write_bytes(b"placeholder checkpoint")
    with zipfile.ZipFile(bundle / "mols.zip", "w") as mols:
        for pkl in sorted(boltzgen_mols.glob("*.pkl")):
            mols.write(pkl, pkl.name)
    return models


@pytest.mark.parametrize(("chain", "exit_code", "says"), [
    ("Q", ExitCode.INVALID_INPUT, "Specified chain id Q not in file"),  # refused by boltzgen's own check
    ("A", ExitCode.GPU_DEVICE_ERROR, "no usable CUDA device"),  # accepted; boltzgen then needs a GPU
])  # fmt: skip
def test_boltzgen_image_design_reaches_boltzgens_own_spec_check(boltzgen_image, boltzgen_models, tmp_path, chain,
                                                                 exit_code, says):  # fmt: skip
    pod = design_pod(chain, tmp_path / "config")
    results, termination = tmp_path / "results", tmp_path / "termination-log"
    results.mkdir(mode=0o777)
    results.chmod(0o777)
    args, run = pod_run(pod, {CONFIG_VOLUME: tmp_path / "config", MODELS_VOLUME: boltzgen_models,
                              RESULTS_VOLUME: results}, extra_env={"JOB_COMPLETION_INDEX": "0"})  # fmt: skip
    run.termination_log = termination
    started = time.monotonic()
    with ImageRoot(boltzgen_image) as image:
        proc = image.run(args, run, timeout=600)
    print(
        f"\n[images] boltz-worker design in the image ({chain}): exit {proc.returncode} in "
        f"{time.monotonic() - started:.1f} s"
    )
    assert proc.returncode == exit_code, (proc.stdout + proc.stderr)[-6000:]
    summary = RunSummary.from_termination_message(termination.read_text())
    assert says in summary.message, summary.message


# ---------------------------------------------------------------------------------------------- prepare


def test_boltz_image_prepares_on_cpu_then_predicts_from_the_stored_msa(boltz_image, model_cache, tmp_path):
    """Both steps of a prediction as the operator makes them (its reconciler, its ConfigMap and Jobs), each run in
    the image as its pod runs it: prepare fetches the protein's MSA from a loopback MSA server into a PVC-style MSA
    store; the GPU step (on CPU here) reads it from the store, mounted read-only, and calls no server."""
    from datetime import UTC, datetime

    from boltz_operator.kube import TerminatedWorker
    from boltz_operator.reconcile.prediction import reconcile_prediction
    from support.fake_kube import FakeKube
    from support.msa_server import MsaServer
    from support.msa_server import serving as serving_msas
    from support.objects import COMPLETE, JobBody, Resource

    spec = example_spec()
    del spec["sequences"][0]["protein"]["msa"]  # computed by the MSA server
    models, results, store = tmp_path / "models", tmp_path / "results", tmp_path / "msa-store"
    for folder in (models, results, store):
        folder.mkdir()
    shutil.copytree(model_cache, models / "boltz2")
    results.chmod(0o777), store.chmod(0o777)  # fresh PVCs made writable for the pods' uid (fsGroup in a cluster)
    cache = Resource.model_cache("default").phase("Ready").obj()
    now = datetime.now(UTC)
    with serving_msas(MsaServer()) as server:
        body = Resource.prediction("egfr-msa").spec(
            **{**spec, "msaServer": {"url": server.url, "store": {"pvc": {"claimName": "msas"}}},
               "results": {"pvc": {"claimName": "results"}}}
        ).obj()  # fmt: skip
        kube = FakeKube()
        reconcile_prediction(body, cache, None, kube, OperatorConfig(), now)
        configmap, prepare_job = kube.created
        sources = {CONFIG_VOLUME: tmp_path / "prepare-config", MODELS_VOLUME: models, "msa-store": store}
        pod = SERIALIZE(prepare_job)["spec"]["template"]["spec"]
        project(pod, CONFIG_VOLUME, {configmap.metadata.name: configmap.data}, sources[CONFIG_VOLUME])
        args, run = pod_run(pod, sources, extra_env=CPU_ONLY)
        run.termination_log = tmp_path / "prepare-termination"
        run.termination_log.touch()
        assert "nvidia.com/gpu" not in prepare_job.spec.template.spec.containers[0].resources.limits
        started = time.monotonic()
        with ImageRoot(boltz_image) as image:
            proc = image.run(args, run, timeout=900)
        print(
            f"\n[images] boltz-worker prepare in the image: exit {proc.returncode} in {time.monotonic() - started:.1f} s"
        )
        assert proc.returncode == ExitCode.OK, (proc.stdout + proc.stderr)[-6000:]
        prepared = RunSummary.from_termination_message(run.termination_log.read_text())
        assert [(m.chain, m.source) for m in prepared.msas] == [("A", "fetched")]
        assert prepared.msa_server_calls == server.total_submissions == 1
    # The key as the pod's uid wrote it into the store PVC: its file, then the marker that says it is whole.
    prepare_run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    stored = store / Path(prepare_run.msa_store.local_dir).relative_to("/msa-store") / prepare_run.msa_request.key
    assert sorted(p.name for p in stored.iterdir()) == ["0.csv", "_COMPLETE"]
    assert all(p.stat().st_uid == 1000 for p in stored.iterdir())

    # The GPU step, created by the operator's next pass, with the server gone: it must not need it.
    body["status"] = kube.status_patches[-1]
    done = JobBody("egfr-msa-prepare").conditions(COMPLETE).status(succeeded=1).obj()
    kube = FakeKube(TerminatedWorker(exit_code=0, summary=prepared, raw_message="", reason="Completed"))
    reconcile_prediction(body, cache, None, kube, OperatorConfig(), now, prepare_job=done)
    [gpu_job] = kube.created
    pod = SERIALIZE(gpu_job)["spec"]["template"]["spec"]
    sources = {CONFIG_VOLUME: tmp_path / "gpu-config", MODELS_VOLUME: models, RESULTS_VOLUME: results,
               "msa-store": store}  # fmt: skip
    project(pod, CONFIG_VOLUME, {configmap.metadata.name: configmap.data}, sources[CONFIG_VOLUME])
    args, run = pod_run(pod, sources, extra_env=CPU_ONLY)
    run.termination_log = tmp_path / "predict-termination"
    run.termination_log.touch()
    assert [b.read_only for b in run.binds if b.target == "/msa-store"] == [True]
    with ImageRoot(boltz_image) as image:
        proc = image.run(args, run, timeout=1500)
    assert proc.returncode == ExitCode.OK, (proc.stdout + proc.stderr)[-6000:]
    summary = RunSummary.from_termination_message(run.termination_log.read_text())
    assert summary.ok and summary.confidence_score is not None
    [staged] = [p for p in results.rglob("egfr-msa.yaml")]  # the input the GPU step ran, uploaded with the results
    msa = yaml.safe_load(staged.read_text())["sequences"][0]["protein"]["msa"]
    assert msa.startswith("/msa-store/lab/") and msa.endswith("/0.csv")

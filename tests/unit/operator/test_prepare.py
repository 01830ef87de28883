"""The prepare step before a prediction's GPU Job, and the MSA gate: what a pass creates and writes for each
outcome of the prepare Job, with the API layer replaced by a recorder (tests/integration/operator covers the real
one)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml

import boltz_contract as contract
from boltz_contract import ErrorClass, RunSummary
from boltz_contract.msa import ChainMsa, msa_key
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import TerminatedWorker
from boltz_operator.reconcile.msa_gate import ALL, MsaGate, MsaGateView, Wait
from boltz_operator.reconcile.prediction import reconcile_prediction
from support.fake_kube import FakeKube
from support.objects import COMPLETE, EXAMPLES, JobBody, Resource, failed

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONFIG = OperatorConfig(worker_image="worker:1", prepare_cpu="1", prepare_memory="3Gi")
EGFR = "GEAPNQALLRILKETEFKKIKVLGSGAFGTVYKGLWIPEGEKVKIPVAIKELREATSPKANKEILDEAYVMASVDNPHVCRLLGICLTSTVQLITQ"
SERVER = "https://msa.example.org"


def server_prediction(name: str = "egfr", sequence: str = EGFR, **spec) -> dict:
    """A protein without an MSA (the server computes it) and a ligand, with an MSA server."""
    body = Resource.prediction(name).spec(
        **{
            "sequences": [
                {"protein": {"ids": ["A"], "sequence": sequence}},
                {"ligand": {"ids": ["B"], "smiles": "CCO"}},
            ],
            "msaServer": {"url": SERVER},
            **spec,
        }
    )
    return body.obj()


def ready_cache() -> dict:
    return Resource.model_cache("default").phase("Ready").obj()


def prepare_job(conditions=None, **status) -> dict:
    return JobBody("egfr-prepare").conditions(conditions).status(**status).obj()


def worker(summary: RunSummary | None, exit_code: int = 0, reason: str = "Completed") -> TerminatedWorker:
    return TerminatedWorker(exit_code=exit_code, summary=summary, raw_message="", reason=reason)


def env_of(job) -> dict:
    return {e.name: e for e in job.spec.template.spec.containers[0].env}


def test_the_prepare_job_asks_for_no_gpu_mounts_the_cache_read_only_and_carries_the_msa_key():
    kube = FakeKube()
    reconcile_prediction(server_prediction(), ready_cache(), None, kube, CONFIG, NOW)
    configmap, job = kube.created
    pod = job.spec.template.spec
    [container] = pod.containers
    assert container.command == ["boltz-worker", "prepare"]
    assert container.resources.limits == {"cpu": "1", "memory": "3Gi"}  # no nvidia.com/gpu
    assert pod.tolerations is None and pod.node_selector is None  # not on the GPU nodes' taint
    models = next(m for m in container.volume_mounts if m.mount_path == contract.MODELS_DIR)
    assert models.read_only
    run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    assert isinstance(run, contract.PrepareRun)
    config = next(v for v in pod.volumes if v.name == "run-config").projected.sources[0].config_map
    assert config.name == "egfr-predict-run"
    assert [(i.key, i.path) for i in config.items] == [
        ("prepare-run.json", "run.json"),
        ("prepare-egfr.yaml", "egfr.yaml"),
    ]
    key = msa_key(SERVER, "greedy", [EGFR])
    assert run.msa_request == contract.MsaRequest(key=key, chains=["A"], sequences=[EGFR])
    # No MSA store of its own nor a default one: the results store's msas/ prefix, per namespace.
    assert run.msa_store.uri == "s3://bucket/base/msas/lab"
    assert job.metadata.annotations == {"boltz-operator.io/msa": f"s3://bucket/base/msas/lab/{key}"}
    assert "msa" not in yaml.safe_load(configmap.data["prepare-egfr.yaml"])["sequences"][0]["protein"]


def test_after_prepare_the_gpu_run_reads_the_stored_msa_and_never_calls_the_server():
    summary = RunSummary(ok=True, msas=[ChainMsa(chain="A", source="fetched")], msa_server_calls=1)
    kube = FakeKube(worker(summary))
    body = server_prediction(
        msaServer={"url": SERVER, "store": {"s3": {"uri": "s3://msas/store", "credentialsSecretRef": {"name": "m"}}}}
    )
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW)
    configmap, _ = kube.created  # the one run ConfigMap, created with the prepare Job
    body["status"] = kube.status_patches[-1]
    kube.created.clear()
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW, prepare_job=prepare_job(COMPLETE, succeeded=1))
    [job] = kube.created
    assert job.metadata.name == "egfr-predict"
    run = contract.RUN_ADAPTER.validate_json(configmap.data[contract.RUN_FILE])
    assert isinstance(run, contract.PredictRun) and not run.options.use_msa_server
    key = msa_key(SERVER, "greedy", [EGFR])
    [download] = run.downloads
    assert download.uri == f"s3://msas/store/lab/{key}/0.csv"
    assert download.credentials_env_prefix == "MSA_STORE_"
    assert yaml.safe_load(configmap.data["egfr.yaml"])["sequences"][0]["protein"]["msa"] == download.dest
    env = env_of(job)
    assert env["MSA_STORE_AWS_ACCESS_KEY_ID"].value_from.secret_key_ref.name == "m"
    assert not {"BOLTZ_MSA_USERNAME", "MSA_API_KEY_VALUE"} & set(env)  # only prepare talks to the server
    written = kube.status_patches[-1]
    assert written["phase"] == "Pending" and written["msa"] == [{"chain": "A", "source": "fetched"}]
    prepared = next(c for c in written["conditions"] if c["type"] == "Prepared")
    assert prepared["status"] == "True" and "fetched (A)" in prepared["message"]


def test_a_gpu_job_whose_creating_pass_died_before_its_status_write_still_ends_prepared_with_its_msas():
    summary = RunSummary(ok=True, msas=[ChainMsa(chain="A", source="reused")])
    kube = FakeKube(worker(summary), exists=True)
    body = server_prediction()
    body["status"] = {"phase": "Preparing"}
    gpu = JobBody("egfr-predict").status(active=1, ready=1).obj()
    reconcile_prediction(
        body, ready_cache(), gpu, kube, CONFIG, NOW, prepare_job=prepare_job(COMPLETE, succeeded=1)
    )  # fmt: skip
    [written] = kube.status_patches
    assert written["phase"] == "Running" and written["msa"] == [{"chain": "A", "source": "reused"}]
    prepared = next(c for c in written["conditions"] if c["type"] == "Prepared")
    assert prepared["status"] == "True"


def test_a_pvc_msa_store_is_mounted_read_write_by_prepare_and_read_only_by_the_gpu_pod():
    store = {"pvc": {"claimName": "msas", "subPath": "boltz"}}
    kube = FakeKube(worker(RunSummary(ok=True, msas=[ChainMsa(chain="A", source="reused")])))
    body = server_prediction(msaServer={"url": SERVER, "store": store})
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW)
    configmap, prepare = kube.created
    [mount] = [m for m in prepare.spec.template.spec.containers[0].volume_mounts if m.name == "msa-store"]
    assert mount.mount_path == "/msa-store" and not mount.read_only
    kube.created.clear()
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW, prepare_job=prepare_job(COMPLETE, succeeded=1))
    [job] = kube.created
    [mount] = [m for m in job.spec.template.spec.containers[0].volume_mounts if m.name == "msa-store"]
    assert mount.read_only
    key = msa_key(SERVER, "greedy", [EGFR])
    msa = yaml.safe_load(configmap.data["egfr.yaml"])["sequences"][0]["protein"]["msa"]
    assert msa == f"/msa-store/boltz/lab/{key}/0.csv"
    assert json.loads(configmap.data[contract.RUN_FILE])["downloads"] == []


def test_input_prepare_refuses_fails_the_prediction_with_its_message_and_no_gpu_job():
    message = "sequences[1].ligand B: RDKit cannot sanitize the SMILES [Xx]: Explicit valence ..."
    kube = FakeKube(worker(RunSummary(ok=False, error_class=ErrorClass.INVALID_INPUT, message=message), 10, "Error"))
    body = server_prediction()
    reconcile_prediction(
        body, ready_cache(), None, kube, CONFIG, NOW, prepare_job=prepare_job(failed("PodFailurePolicy"), failed=1)
    )
    assert kube.created == []
    written = kube.status_patches[-1]
    assert written["phase"] == "Failed"
    assert written["message"] == f"prepare: {message} (no GPU was used)"
    prepared = next(c for c in written["conditions"] if c["type"] == "Prepared")
    assert prepared["status"] == "False" and prepared["reason"] == "InvalidInput"


def test_a_prepare_killed_by_its_memory_limit_names_the_limit_and_the_chart_value():
    kube = FakeKube(worker(None, 137, "OOMKilled"))
    reconcile_prediction(
        server_prediction(), ready_cache(), None, kube, CONFIG, NOW, prepare_job=prepare_job(failed("PodFailurePolicy"))
    )
    written = kube.status_patches[-1]
    assert written["phase"] == "Failed"
    failed_condition = next(c for c in written["conditions"] if c["type"] == "Failed")
    assert failed_condition["reason"] == "MemoryLimitExceeded"
    assert "memory limit of 3Gi" in written["message"] and "prepare.memory" in written["message"]


def test_two_predictions_of_one_protein_never_fetch_at_once_and_the_second_reuses():
    gate = MsaGate(limit=4)
    first, second = FakeKube(), FakeKube()
    reconcile_prediction(server_prediction("first"), ready_cache(), None, first, CONFIG, NOW, msa=MsaGateView(gate, {}))
    reconcile_prediction(
        server_prediction("second"), ready_cache(), None, second, CONFIG, NOW, msa=MsaGateView(gate, {})
    )
    assert [o.metadata.name for o in first.created] == ["first-predict-run", "first-prepare"]
    assert second.created == []
    waiting = second.status_patches[-1]
    assert waiting["phase"] == "Preparing" and "prediction first is fetching the same MSA" in waiting["message"]
    assert next(c for c in waiting["conditions"] if c["type"] == "Prepared")["reason"] == "WaitingForMsa"
    # The first prepare stored the MSA: the second is woken, and starts without a key (no server slot).
    gate.release(
        ("BoltzPrediction", "lab", "first"),
        f"s3://bucket/base/msas/lab/{msa_key(SERVER, 'greedy', [EGFR])}",
        stored=True,
    )
    assert gate.take_wakeups() == [("BoltzPrediction", "lab", "second")]
    reconcile_prediction(
        server_prediction("second"), ready_cache(), None, second, CONFIG, NOW, msa=MsaGateView(gate, {})
    )
    job = second.created[1]
    assert job.metadata.name == "second-prepare" and job.metadata.annotations is None


def test_a_restarted_operator_sees_fetches_in_flight_through_the_index():
    key = f"s3://bucket/base/msas/lab/{msa_key(SERVER, 'greedy', [EGFR])}"
    index = {key: [("BoltzPrediction", "lab", "first")], ALL: [("BoltzPrediction", "lab", "first")]}
    kube = FakeKube()
    reconcile_prediction(
        server_prediction("second"), ready_cache(), None, kube, CONFIG, NOW, msa=MsaGateView(MsaGate(4), index)
    )
    assert kube.created == [] and kube.status_patches[-1]["phase"] == "Preparing"


def test_at_most_the_limit_of_prepares_call_msa_servers_at_once():
    gate = MsaGate(limit=2)
    answers = [
        gate.admit(("BoltzPrediction", "lab", f"p{i}"), msa_key(None, "greedy", [f"MKV{'A' * i}"]), {})
        for i in range(3)
    ]
    assert [type(a).__name__ for a in answers] == ["Admission", "Admission", "Wait"]
    assert isinstance(answers[2], Wait) and answers[2].reason == "WaitingForMsaServer"
    gate.release(
        ("BoltzPrediction", "lab", "p0"), msa_key(None, "greedy", ["MKV"]), stored=False
    )  # failed: the key stays unknown
    assert gate.take_wakeups() == [("BoltzPrediction", "lab", "p2")]
    assert (
        type(gate.admit(("BoltzPrediction", "lab", "p2"), msa_key(None, "greedy", ["MKVAA"]), {})).__name__
        == "Admission"
    )


def test_deleting_a_prediction_that_holds_a_key_frees_it_for_the_waiters():
    gate = MsaGate(limit=4)
    key = msa_key(None, "greedy", [EGFR])
    gate.admit(("BoltzPrediction", "lab", "holder"), key, {})
    assert isinstance(gate.admit(("BoltzPrediction", "lab", "waiter"), key, {}), Wait)
    gate.forget(("BoltzPrediction", "lab", "holder"))
    assert gate.take_wakeups() == [("BoltzPrediction", "lab", "waiter")]
    assert not isinstance(gate.admit(("BoltzPrediction", "lab", "waiter"), key, {}), Wait)


def test_without_msa_requests_the_gate_is_not_asked_and_the_prepare_has_no_store():
    gate = MsaGate(limit=1)
    gate.admit(("BoltzPrediction", "lab", "busy"), "f" * 64, {})  # the only slot is taken
    kube = FakeKube()
    body = Resource.prediction("single").obj()  # examples/prediction.yaml: msa empty
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW, msa=MsaGateView(gate, {}))
    configmap, job = kube.created
    run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    assert run.msa_request is None and run.msa_store is None and job.metadata.annotations is None


def test_the_msa_server_example_is_prepared_with_a_request_for_its_kinase():
    body = Resource.prediction("egfr-erlotinib-msa").obj()
    example = yaml.safe_load((EXAMPLES / "prediction-msa-server.yaml").read_text())
    body["spec"] = {**example["spec"], "results": {"s3": {"uri": "s3://bucket/base"}}}
    kube = FakeKube()
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW)
    configmap, _ = kube.created
    run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    protein = example["spec"]["sequences"][0]["protein"]
    assert run.msa_request.chains == ["A"] and run.msa_request.sequences == [protein["sequence"]]


def test_a_homodimer_written_as_two_items_asks_its_sequence_once_and_both_read_one_file():
    body = (
        Resource.prediction("dimer")
        .spec(
            sequences=[
                {"protein": {"ids": ["A"], "sequence": EGFR}},
                {"protein": {"ids": ["B"], "sequence": EGFR}},
                {"ligand": {"ids": ["C"], "smiles": "CCO"}},
            ],
            affinity=None,
            msaServer={"url": SERVER, "store": {"pvc": {"claimName": "msas"}}},
        )
        .obj()
    )
    kube = FakeKube()
    reconcile_prediction(body, ready_cache(), None, kube, CONFIG, NOW)
    configmap, _ = kube.created
    run = contract.RUN_ADAPTER.validate_json(configmap.data["prepare-run.json"])
    assert run.msa_request.chains == ["A"] and run.msa_request.sequences == [EGFR]  # one entity to boltz
    proteins = [s["protein"] for s in yaml.safe_load(configmap.data["dimer.yaml"])["sequences"] if "protein" in s]
    assert proteins[0]["msa"] == proteins[1]["msa"] == f"/msa-store/lab/{run.msa_request.key}/0.csv"

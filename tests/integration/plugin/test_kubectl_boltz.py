"""`kubectl boltz` as a user runs it (the installed kubectl-boltz executable, as a subprocess) against the local
control plane, the operator (under the chart's RBAC) and a real S3 server: from `predict` to `results`.

kwok plays the worker pod; this test plays the worker's upload (the files and result.json a finished prediction
leaves in S3), so `results` downloads and checks real objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import boltz_contract as contract
from boltz_contract import RunSummary
from boltz_contract.msa import ChainMsa
from boltz_contract.screen import LigandRow, RankedLigand
from boltz_worker.screen_runs.table import rows_to_csv, rows_to_parquet
from support.manifests import as_input, merge_played, model_cache, played, predict_ok
from support.wait import wait_until

pytestmark = pytest.mark.cluster

PLUGIN = Path(sys.executable).parent / "kubectl-boltz"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
P1 = "MKTLLVAGAVALSACSQNDEKPVTEEHRALLEKAG"
P2 = "GSPEELLKRAEELIKKGDYEGALKLLEEAAKLAE"


class Plugin:
    def __init__(self, cluster, namespace: str, s3_server):
        self.base = [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
        # the user's own S3 credentials, as a shell would have them
        self.env = {**os.environ, **s3_server.env()}

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, env=self.env, cwd=cwd, timeout=180)


@pytest.fixture
def plugin(cluster, namespace, s3_server) -> Plugin:
    return Plugin(cluster, namespace, s3_server)


def write_input(folder: Path, big_rows: int) -> Path:
    """A two-protein boltz input: a small MSA (ConfigMap) and one over 256 KiB (uploaded to S3)."""
    (folder / "msa").mkdir(parents=True)
    (folder / "msa" / "a.a3m").write_text(f">101\n{P1}\n>hit\n{P1[:5]}W{P1[6:]}\n")
    (folder / "msa" / "b.a3m").write_text(f">101\n{P2}\n" + "".join(f">hit{i}\n{P2}\n" for i in range(big_rows)))
    path = folder / "complex.yaml"
    path.write_text(
        "version: 1\nsequences:\n"
        f"  - protein: {{id: A, sequence: {P1}, msa: msa/a.a3m}}\n"
        f"  - protein: {{id: B, sequence: {P2}, msa: ./msa/b.a3m}}\n"
        "  - ligand: {id: L, ccd: SAH}\n"
        "properties:\n  - affinity: {binder: L}\n"
    )
    return path


def play_the_worker_upload(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    """What a finished prediction leaves under its results URI: the files, then result.json listing them."""
    files = {
        "complex_model_0.cif": b"data_complex\n# a structure\n",
        "confidence_complex_model_0.json": json.dumps({"confidence_score": 0.91}).encode(),
        "plddt/plddt_complex_model_0.npz": os.urandom(2048),
    }
    for rel, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{rel}", Body=data)
    result = contract.PredictionResult(
        record_id="complex",
        results_uri=f"s3://{bucket}/{prefix}",
        files=[
            contract.FileSummary(path=r, bytes=len(d), sha256=hashlib.sha256(d).hexdigest()) for r, d in files.items()
        ],
        structures=["complex_model_0.cif"],
        started_at="2026-11-30T00:00:00Z",
        finished_at="2026-11-30T00:01:00Z",
    )
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{contract.RESULT_FILE}", Body=result.model_dump_json().encode())
    return files


def test_predict_status_wait_results(cluster, namespace, operator, s3_bucket, plugin, tmp_path):
    source = write_input(tmp_path / "inputs", big_rows=8000)  # b.a3m: about 320 KiB
    results = f"s3://{s3_bucket.name}/runs"
    submit = ["predict", str(source), "--results", results, "--s3-endpoint", s3_bucket.endpoint_url,
              "--s3-credentials-secret", "results-s3"]  # fmt: skip
    created = plugin(*submit)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "configmap/complex-inputs created",
        "boltzprediction.boltz-operator.io/complex created",
    ]

    prediction = cluster.kubectl_json("get", "boltzprediction", "complex", "-n", namespace)
    uid = prediction["metadata"]["uid"]
    msas = [s["protein"]["msa"] for s in prediction["spec"]["sequences"] if "protein" in s]
    assert msas[0] == {"configMapKeyRef": {"name": "complex-inputs", "key": "a.a3m"}}
    big_key = f"runs/{namespace}/complex/inputs/b.a3m"
    assert msas[1] == {"s3": {"uri": f"s3://{s3_bucket.name}/{big_key}"}}
    assert s3_bucket.read(big_key) == (source.parent / "msa" / "b.a3m").read_bytes()  # uploaded as the user
    configmap = cluster.kubectl_json("get", "configmap", "complex-inputs", "-n", namespace)
    assert [o["uid"] for o in configmap["metadata"]["ownerReferences"]] == [uid]  # deleted with the prediction
    assert set(configmap["data"]) == {"a.a3m"}

    again = plugin(*submit)
    assert again.returncode == 1
    assert "boltzprediction/complex already exists" in again.stderr and "configmap/complex-inputs" in again.stderr

    # No model cache yet: status says why the prediction waits; logs and wait say so too.
    waiting = wait_until(lambda: _status_with(plugin, "complex", "WaitingForModelCache"), timeout=60, what="waiting")
    assert "Why:" in waiting and "ModelCacheReady=False" in waiting
    logs = plugin("logs", "complex")
    assert logs.returncode == 1 and "no worker pod yet" in logs.stderr
    assert plugin("wait", "complex", "--timeout", "2s").returncode == 3

    # kwok plays the worker (spec.podMetadata may change before the Job exists); this test plays its upload.
    prefix = f"runs/{namespace}/complex/{uid}"
    summary = predict_ok(f"s3://{s3_bucket.name}/{prefix}")
    patch = {"spec": {"podMetadata": played(summary, run_duration="2s")}}
    cluster.kubectl("patch", "boltzprediction", "complex", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    uploaded = play_the_worker_upload(s3_bucket.client(), s3_bucket.name, prefix)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))

    waited = plugin("wait", "complex", "--timeout", "120s")
    assert waited.returncode == 0, waited.stderr
    assert "boltzprediction/complex: Succeeded" in waited.stderr
    status = plugin("status", "complex")
    assert "Phase:     Succeeded" in status.stdout and "confidence 0.91" in status.stdout
    assert f"s3://{s3_bucket.name}/{prefix}" in status.stdout

    out = tmp_path / "results"
    fetched = plugin("results", "complex", "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()} == {
        **uploaded,
        contract.RESULT_FILE: s3_bucket.read(f"{prefix}/{contract.RESULT_FILE}"),
    }

    # A file that no longer matches result.json is refused.
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"{prefix}/complex_model_0.cif", Body=b"changed")
    refused = plugin("results", "complex", "-o", str(tmp_path / "again"))
    assert refused.returncode == 1 and "does not match result.json" in refused.stderr


def _status_with(plugin: Plugin, name: str, text: str) -> str | None:
    result = plugin("status", name)
    return result.stdout if result.returncode == 0 and text in result.stdout else None


def created_objects(cluster, namespace: str) -> list[str]:
    out = cluster.kubectl(
        "get", "boltzpredictions,boltzgencampaigns,boltzscreens,configmaps", "-n", namespace, "-o", "name"
    )
    return [line for line in out.stdout.splitlines() if "kube-root-ca.crt" not in line]


@pytest.mark.parametrize(
    "text, message",
    [
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: gone.a3m}}}}]", "file gone.a3m not found"),
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: ../x.a3m}}}}]", "outside the input's folder"),
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: empty, color: red}}}}]", "unknown key 'color'"),
        (f"sequences: [{{protein: {{id: A, sequence: {P1}, msa: big.a3m}}}}]", "too large for a ConfigMap"),
    ],
)
def test_bad_input_creates_nothing(cluster, namespace, plugin, tmp_path, text, message):
    (tmp_path / "x.a3m").write_text(f">q\n{P1}\n")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "big.a3m").write_text(f">q\n{P1}\n" * 8000)
    (folder / "bad.yaml").write_text(text)
    result = plugin("predict", str(folder / "bad.yaml"))
    assert result.returncode == 1
    assert message in result.stderr
    assert created_objects(cluster, namespace) == []


def test_server_dry_run_stores_nothing_and_the_apiserver_checks(cluster, namespace, plugin):
    result = plugin("predict", str(FIXTURES / "boltz_inputs" / "ligand.fasta"), "--dry-run=server")
    assert result.returncode == 0, result.stderr
    assert "boltzprediction.boltz-operator.io/ligand created (server dry run)" in result.stdout
    assert created_objects(cluster, namespace) == []


def test_design_creates_a_campaign_owning_its_target(cluster, namespace, plugin, tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "3ch4.cif").write_bytes((FIXTURES / "structures" / "3ch4.cif").read_bytes())
    spec = tmp_path / "binder.yaml"
    spec.write_text(yaml.safe_dump({"entities": [
        {"protein": {"id": "B", "sequence": "60..80"}},
        {"file": {"path": "target/3ch4.cif", "include": [{"chain": {"id": "A"}}]}},
    ]}))  # fmt: skip
    result = plugin("design", str(spec), "--num-designs", "40", "--budget", "5", "--protocol", "protein-anything",
                    "--model-cache", "boltzgen")  # fmt: skip
    assert result.returncode == 0, result.stderr
    campaign = cluster.kubectl_json("get", "boltzgencampaign", "binder", "-n", namespace)
    target = campaign["spec"]["designSpec"]["entities"][1]["file"]["configMapKeyRef"]
    assert target == {"name": "binder-inputs", "key": "3ch4.cif"}
    configmap = cluster.kubectl_json("get", "configmap", "binder-inputs", "-n", namespace)
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == campaign["metadata"]["uid"]
    status = plugin("status", "binder", "-o", "json")
    assert json.loads(status.stdout)["kind"] == "BoltzGenCampaign"


def test_pvc_results_go_through_a_restricted_reader_pod(cluster, namespace, operator, plugin):
    """The reader pod is admitted where Pod Security enforces `restricted`, and is gone after `results`.
    kwok runs no container, so the copy itself (exec `tar | base64`) cannot succeed here: the test checks that the
    failure is reported as such, and the unpacking and checks are unit-tested (tests/unit/plugin/test_results.py)."""
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    claim = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "results"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache(), claim))
    body = yaml.safe_load((FIXTURES.parent.parent / "examples" / "prediction.yaml").read_text())
    body["metadata"] = {"name": "on-pvc"}
    body["spec"]["results"] = {"pvc": {"claimName": "results", "subPath": "runs"}}
    uri = f"pvc://results/runs/{namespace}/on-pvc/some-uid"
    body["spec"]["podMetadata"] = played(predict_ok(uri))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))
    waited = plugin("wait", "on-pvc", "--timeout", "90s")
    assert waited.returncode == 0, waited.stderr

    # the worker's log: the newest pod of the prediction's Job (kwok's fake nodes serve no logs, so the apiserver's
    # error comes back, naming that pod)
    logs = plugin("logs", "on-pvc")
    assert logs.returncode == 1 and "cannot read the log of pod on-pvc-predict-" in logs.stderr, logs.stderr

    result = plugin("results", "on-pvc", "-o", "/nonexistent-never-written")
    assert result.returncode == 1
    assert "forbidden" not in result.stderr.lower(), result.stderr  # admitted under `restricted`
    assert f"cannot read {uri} through pod boltz-results-reader-" in result.stderr, result.stderr
    pods = cluster.kubectl(
        "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=results-reader", "-o", "name"
    )
    assert pods.stdout.strip() == ""  # the reader pod was deleted


LIBRARY = ["COCCOc1cc2ncnc(Nc3cccc(C#C)c3)c2cc1OCCOC erlotinib", "CCO ethanol", "c1ccncc1 pyridine",
           "CC(=O)Oc1ccccc1C(=O)O aspirin", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C caffeine"]  # fmt: skip


def write_screen_inputs(folder: Path, library_lines: list[str]) -> tuple[Path, Path]:
    """A boltz YAML target (one protein, its MSA beside it, a pocket for the screened chain) and a .smi library."""
    (folder / "msa").mkdir(parents=True)
    (folder / "msa" / "a.a3m").write_text(f">101\n{P1}\n")
    target = folder / "egfr.yaml"
    target.write_text(
        "version: 1\nsequences:\n"
        f"  - protein: {{id: A, sequence: {P1}, msa: msa/a.a3m}}\n"
        "constraints:\n  - pocket: {binder: L, contacts: [[A, 12]], max_distance: 8}\n"
    )
    library = folder / "kinase.smi"
    library.write_text("\n".join(["# smiles id", *library_lines]) + "\n")
    return target, library


def test_screen_from_files_dry_run_then_created_and_played_to_a_ranked_table(
    cluster, namespace, operator, s3_bucket, plugin, tmp_path
):
    target, library = write_screen_inputs(tmp_path / "inputs", LIBRARY)
    args = ["screen", str(target), str(library), "--shards", "2", "--top-k", "2", "--results",
            f"s3://{s3_bucket.name}/screens", "--s3-endpoint", s3_bucket.endpoint_url]  # fmt: skip

    printed = plugin(*args, "--dry-run=client", "-o", "yaml")
    assert printed.returncode == 0, printed.stderr
    configmap, screen = yaml.safe_load_all(printed.stdout)
    assert screen["spec"]["library"] == {
        "format": "smi",
        "configMapKeyRef": {"name": "egfr-inputs", "key": "kinase.smi"},
    }
    assert screen["spec"]["ligandsPerShard"] == 3  # 5 ligands in 2 shards
    assert configmap["data"]["kinase.smi"] == library.read_text()
    validated = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=printed.stdout,
                                check=False)  # fmt: skip
    assert validated.returncode == 0, validated.stderr
    assert created_objects(cluster, namespace) == []

    created = plugin(*args)
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "configmap/egfr-inputs created",
        "boltzscreen.boltz-operator.io/egfr created",
    ]
    screen = cluster.kubectl_json("get", "boltzscreen", "egfr", "-n", namespace)
    owners = cluster.kubectl_json("get", "configmap", "egfr-inputs", "-n", namespace)["metadata"]["ownerReferences"]
    assert [o["uid"] for o in owners] == [screen["metadata"]["uid"]]  # deleted with the screen
    assert plugin("screen", str(target), str(library)).returncode == 1  # the name is taken: nothing replaced

    # kwok plays the prepare, shard and rank pods with the summaries real workers would write
    top = [RankedLigand(rank=1, id="erlotinib", affinity_probability_binary=0.9),
           RankedLigand(rank=2, id="caffeine", affinity_probability_binary=0.4)]  # fmt: skip
    prepared = RunSummary(
        ok=True, ligands_total=5, ligands_failed=0, shards=2, msas=[ChainMsa(chain="A", source="given")]
    )
    ranked = RunSummary(ok=True, ligands_total=5, ligands_done=5, ligands_failed=0, top_ligands=top)
    pods = merge_played(
        played(prepared, only="screen-prepare"),
        played(RunSummary(ok=True, shard_index=0, ligands_done=3), only="index-0"),
        played(RunSummary(ok=True, shard_index=1, ligands_done=2), only="index-1"),
        played(ranked, only="screen-rank"),
    )
    patch = json.dumps({"spec": {"podMetadata": pods}})
    cluster.kubectl("patch", "boltzscreen", "egfr", "-n", namespace, "--type=merge", "-p", patch)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))

    waited = plugin("wait", "egfr", "--timeout", "120s")
    assert waited.returncode == 0, waited.stderr
    assert "boltzscreen/egfr: Succeeded" in waited.stderr
    jobs = cluster.kubectl_json("get", "jobs", "-n", namespace)["items"]
    children = {j["metadata"]["name"]: j for j in jobs if j["metadata"]["name"].startswith("egfr-")}
    assert set(children) == {"egfr-screenprep", "egfr-screen", "egfr-rank"}
    assert children["egfr-screen"]["spec"]["completions"] == 2
    for job in children.values():
        assert job["metadata"]["ownerReferences"][0]["uid"] == screen["metadata"]["uid"]

    status = plugin("status", "egfr")
    assert status.returncode == 0, status.stderr
    rows = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in status.stdout.splitlines() if ":" in line}
    assert rows["Phase"] == "Succeeded" and rows["Kind"] == "BoltzScreen"
    assert rows["Progress"].startswith("ligands 5/5 done, 0 failed; shards 2/2 succeeded")
    assert rows["Top 1"].startswith("erlotinib  P(binder) 0.9") and rows["Top 2"].startswith("caffeine")
    assert rows["Table"].startswith(f"s3://{s3_bucket.name}/screens/{namespace}/egfr/") and rows["Table"].endswith(
        "/ranked.csv"
    )

    # logs: shard 0's pod by default, the rank step's with --rank (kwok's nodes serve no logs: the error names the pod)
    for flags, pod in (([], "egfr-screen-"), (["--rank"], "egfr-rank-")):
        logs = plugin("logs", "egfr", *flags)
        assert logs.returncode == 1 and f"cannot read the log of pod {pod}" in logs.stderr, logs.stderr

    # results: this test plays the rank step's upload (the ranked tables, the structures they name)
    base = rows["Results"].removeprefix(f"s3://{s3_bucket.name}/")
    structure = "shards/0/erlotinib/erlotinib_model_0.cif"
    ranked = [
        LigandRow(id="erlotinib", structure=structure), LigandRow(id="caffeine"),
        LigandRow(id="ethanol", structure="shards/1/ethanol/e.cif"),
    ]  # fmt: skip
    first = {"rank": [1, 2, 3]}
    uploads = (("ranked.csv", rows_to_csv(ranked, first)), ("ranked.parquet", rows_to_parquet(ranked, first)),
               (structure, b"data_erlotinib\n"))  # fmt: skip
    for rel, data in uploads:
        s3_bucket.client().put_object(Bucket=s3_bucket.name, Key=f"{base}/{rel}", Body=data)
    out = tmp_path / "results"
    fetched = plugin("results", "egfr", "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["ranked.csv", "ranked.parquet", structure]
    assert (out / "ranked.parquet").read_bytes() == uploads[1][1]


def test_screen_library_too_large_for_a_configmap_is_uploaded(cluster, namespace, s3_bucket, plugin, tmp_path):
    many = [f"{'C' * 60} m{i}" for i in range(16000)]  # about 1 MiB: over what a ConfigMap may hold
    target, library = write_screen_inputs(tmp_path / "inputs", many)
    refused = plugin("screen", str(target), str(library))
    assert refused.returncode == 1 and "give --results s3://BUCKET/PREFIX" in refused.stderr
    assert created_objects(cluster, namespace) == []

    created = plugin("screen", str(target), str(library), "--results", f"s3://{s3_bucket.name}/screens",
                     "--s3-endpoint", s3_bucket.endpoint_url)  # fmt: skip
    assert created.returncode == 0, created.stderr
    screen = cluster.kubectl_json("get", "boltzscreen", "egfr", "-n", namespace)
    key = f"screens/{namespace}/egfr/inputs/kinase.smi"
    library_spec = screen["spec"]["library"]
    assert (library_spec["format"], library_spec["s3"]) == ("smi", {"uri": f"s3://{s3_bucket.name}/{key}"})
    assert s3_bucket.read(key) == library.read_bytes()  # uploaded with the user's credentials
    configmap = cluster.kubectl_json("get", "configmap", "egfr-inputs", "-n", namespace)
    assert set(configmap["data"]) == {"a.a3m"}  # the target's MSA still in the ConfigMap

"""The command line without a cluster: --dry-run=client output, directories, exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from boltz_kubectl.cli import main
from boltz_kubectl.commands.follow import explaining_condition, parse_duration
from boltz_kubectl.errors import ExitCode

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "boltz_inputs"


def test_dry_run_client_prints_the_manifests_to_apply(capsys):
    code = main(["predict", str(FIXTURES / "prot_custom_msa.yaml"), "--dry-run=client", "-o", "yaml", "-n", "lab",
                 "--model-cache", "weights", "--diffusion-samples", "3", "--seed", "7"])  # fmt: skip
    assert code == 0
    configmap, prediction = yaml.safe_load_all(capsys.readouterr().out)
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["namespace"] == "lab"
    assert prediction["metadata"] == {"name": "prot-custom-msa", "namespace": "lab"}
    assert prediction["spec"]["modelCache"] == "weights"
    assert prediction["spec"]["options"] == {"diffusionSamples": 3, "seed": 7}
    key = prediction["spec"]["sequences"][0]["protein"]["msa"]["configMapKeyRef"]["key"]
    assert configmap["data"][key] == (FIXTURES / "msa" / "seq2.a3m").read_text()


def test_a_directory_makes_one_prediction_per_input(tmp_path, capsys):
    folder = tmp_path / "inputs"
    shutil.copytree(FIXTURES, folder)
    for twin in ("ligand.fasta", "prot.fasta"):  # same names as ligand.yaml and prot.yaml (see the next test)
        (folder / twin).unlink()
    assert main(["predict", str(folder), "--dry-run=client", "-o", "json"]) == 0
    items = json.loads(capsys.readouterr().out)["items"]
    names = sorted(i["metadata"]["name"] for i in items if i["kind"] == "BoltzPrediction")
    assert names == sorted(p.stem.replace("_", "-") for p in folder.iterdir() if p.suffix == ".yaml")
    assert len(names) == 10


def test_one_bad_input_in_a_directory_creates_nothing(tmp_path, capsys):
    folder = tmp_path / "inputs"
    shutil.copytree(FIXTURES, folder)
    (folder / "bad.yaml").write_text("sequences: [{protein: {id: A, sequence: MKV, msa: nowhere.a3m}}]\n")
    assert main(["predict", str(folder), "--dry-run=client", "-o", "yaml"]) == ExitCode.ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nothing was created" in captured.err and "nowhere.a3m not found" in captured.err
    assert "two inputs would both be named 'ligand'" in captured.err  # ligand.fasta and ligand.yaml


def test_name_needs_a_single_input(capsys):
    assert main(["predict", str(FIXTURES), "--name", "x", "--dry-run=client"]) == ExitCode.ERROR
    assert "--name names one prediction" in capsys.readouterr().err


def test_design_dry_run(tmp_path, capsys):
    target = Path(__file__).resolve().parents[2] / "fixtures" / "structures" / "3ch4.cif"
    shutil.copyfile(target, tmp_path / "3ch4.cif")
    (tmp_path / "binder.yaml").write_text(
        "entities:\n  - protein: {id: B, sequence: 60..80}\n  - file: {path: 3ch4.cif, include: [{chain: {id: A}}]}\n"
    )
    code = main(["design", str(tmp_path / "binder.yaml"), "--num-designs", "200", "--budget", "10",
                 "--protocol", "protein-anything", "--shards", "4", "--dry-run=client", "-o", "yaml"])  # fmt: skip
    assert code == 0
    _, campaign = yaml.safe_load_all(capsys.readouterr().out)
    assert campaign["kind"] == "BoltzGenCampaign"
    assert {k: campaign["spec"][k] for k in ("numDesigns", "budget", "protocol", "shards")} == {
        "numDesigns": 200, "budget": 10, "protocol": "protein-anything", "shards": 4,
    }  # fmt: skip
    assert main(["design", str(tmp_path / "binder.yaml"), "--num-designs", "5", "--budget", "9",
                 "--dry-run=client"]) == ExitCode.ERROR  # fmt: skip
    assert "budget must not exceed numDesigns" in capsys.readouterr().err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as raised:
        main(["design", "x.yaml"])  # --num-designs is required
    assert raised.value.code == ExitCode.USAGE


def test_global_flags_before_or_after_the_command(capsys):
    for argv in (["-n", "a", "predict"], ["predict", "-n", "a"]):
        assert main([*argv, str(FIXTURES / "prot.yaml"), "--dry-run=client", "-o", "yaml"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["metadata"]["namespace"] == "a"


def test_durations_and_the_explaining_condition():
    assert parse_duration("90") == 90 and parse_duration("15m") == 900 and parse_duration("2h") == 7200
    assert parse_duration("0") is None
    waiting = {
        "phase": "WaitingForModelCache",
        "conditions": [
            {"type": "ModelCacheReady", "status": "False", "reason": "ModelCacheNotReady", "message": "populating"}
        ],
    }
    assert explaining_condition(waiting)["reason"] == "ModelCacheNotReady"
    failed = {
        "phase": "Failed",
        "conditions": [
            {"type": "ModelCacheReady", "status": "True"},
            {"type": "Failed", "status": "True", "reason": "InvalidInput"},
        ],
    }
    assert explaining_condition(failed)["reason"] == "InvalidInput"

"""Fetching results: the checks against result.json (any store), and the PVC reader pod's pieces."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import boltz_contract as contract
from boltz_kubectl.errors import PluginError
from boltz_kubectl.fetch import LocalSource, fetch_campaign, fetch_prediction
from boltz_kubectl.pvc import reader_pod, split_pvc_uri, unpack

FILES = {"run_model_0.cif": b"data_run\n", "pae/pae_run_model_0.npz": b"\x00\x01binary"}


def prediction_results(folder: Path, files: dict[str, bytes] = FILES) -> LocalSource:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    result = contract.PredictionResult(
        record_id="run", results_uri="pvc://claim/ns/run/uid", structures=["run_model_0.cif"],
        files=[contract.FileSummary(path=r, bytes=len(d), sha256=hashlib.sha256(d).hexdigest()) for r, d in files.items()],
        started_at="2026-11-30T00:00:00Z", finished_at="2026-11-30T00:01:00Z",
    )  # fmt: skip
    (folder / contract.RESULT_FILE).write_text(result.model_dump_json())
    return LocalSource(folder, "pvc://claim/ns/run/uid")


def test_prediction_files_are_checked_against_result_json(tmp_path):
    source = prediction_results(tmp_path / "store")
    written = fetch_prediction(source, tmp_path / "out")
    assert {p.relative_to(tmp_path / "out").as_posix() for p in written} == {*FILES, contract.RESULT_FILE}
    (tmp_path / "store" / "run_model_0.cif").write_bytes(b"data_other\n")  # same size, other content
    with pytest.raises(PluginError, match="does not match result.json"):
        fetch_prediction(source, tmp_path / "out2")


def test_no_result_json_means_not_finished(tmp_path):
    source = prediction_results(tmp_path / "store")
    (tmp_path / "store" / contract.RESULT_FILE).unlink()
    with pytest.raises(PluginError, match="cannot read"):
        fetch_prediction(source, tmp_path / "out")


def test_a_manifest_cannot_write_outside_the_output_folder(tmp_path):
    source = prediction_results(tmp_path / "store", {"../escape.cif": b"x"})
    with pytest.raises(PluginError, match="unsafe path"):
        fetch_prediction(source, tmp_path / "store" / "out")


def test_campaign_file_count_is_checked(tmp_path):
    final = tmp_path / "final"
    (final / "final_ranked_designs").mkdir(parents=True)
    (final / "final_ranked_designs" / "a.cif").write_text("a")
    (final / contract.RESULT_FILE).write_text(json.dumps({"files": 2}))
    with pytest.raises(PluginError, match="holds 1 files, result.json says 2"):
        fetch_campaign(LocalSource(final, "pvc://c/final"), tmp_path / "out")
    (final / "merged").mkdir()
    (final / "merged" / "metrics.csv").write_text("id\n")
    assert len(fetch_campaign(LocalSource(final, "pvc://c/final"), tmp_path / "out")) == 3


def _tar(members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))  # as base64(1) wraps it


def test_unpack_the_reader_pods_stream(tmp_path):
    unpack(_tar({"./result.json": b"{}", "./sub/a.cif": b"A"}), tmp_path)
    assert (tmp_path / "sub" / "a.cif").read_bytes() == b"A"
    with pytest.raises(PluginError, match="not a readable tar stream"):
        unpack(_tar({"../evil": b"x"}), tmp_path / "x")


def test_reader_pod_is_restricted_and_reads_only():
    pod = reader_pod("r", "results-claim", "busybox:1.37")
    spec = pod["spec"]
    container = spec["containers"][0]
    assert (
        spec["securityContext"]["runAsNonRoot"]
        and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "results-claim", "readOnly": True}
    assert container["volumeMounts"][0]["readOnly"] and not spec["automountServiceAccountToken"]
    assert spec["activeDeadlineSeconds"] > 0
    assert split_pvc_uri("pvc://results-claim/runs/ns/run/uid") == ("results-claim", "runs/ns/run/uid")
    with pytest.raises(PluginError):
        split_pvc_uri("pvc://claim/../other")

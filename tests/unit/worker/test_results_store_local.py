"""The results store interface on a local directory (a results PVC), and target selection."""

from __future__ import annotations

import pytest

from boltz_contract import ErrorClass, ResultsTarget, S3Target, WorkerError
from boltz_worker.results.results_store import LocalDirResultsStore, S3ResultsStore, open_results_store


def test_local_store_writes_files_and_bytes_under_their_relative_paths(tmp_path):
    source = tmp_path / "model.cif"
    source.write_text("data_x\n")
    store = open_results_store(ResultsTarget(uri="pvc://results/ns/p/1", local_dir=str(tmp_path / "out")))
    store.put_file("model.cif", source)
    store.put_bytes("input/rec.yaml", b"version: 1\n")
    assert (tmp_path / "out" / "model.cif").read_text() == "data_x\n"
    assert (tmp_path / "out" / "input" / "rec.yaml").read_bytes() == b"version: 1\n"
    assert store.uri_for("input/rec.yaml") == "pvc://results/ns/p/1/input/rec.yaml"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["input", "model.cif"]  # no temp files


def test_local_store_overwrites_a_previous_attempt(tmp_path):
    store = LocalDirResultsStore("pvc://r/x", tmp_path)
    store.put_bytes("result.json", b"old")
    store.put_bytes("result.json", b"new")
    assert (tmp_path / "result.json").read_bytes() == b"new"


def test_local_store_failure_is_a_results_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = LocalDirResultsStore("pvc://r/x", blocker)  # a file where the directory should be
    with pytest.raises(WorkerError) as caught:
        store.put_bytes("result.json", b"{}")
    assert caught.value.error_class == ErrorClass.RESULTS_STORE_ERROR
    assert "result.json" in caught.value.message and "pvc://r/x" in caught.value.message


def test_a_missing_local_file_is_a_results_store_error(tmp_path):
    store = LocalDirResultsStore("pvc://r/x", tmp_path / "out")
    with pytest.raises(WorkerError) as caught:
        store.put_file("a.cif", tmp_path / "absent.cif")
    assert caught.value.error_class == ErrorClass.RESULTS_STORE_ERROR
    assert list((tmp_path / "out").iterdir()) == []


def test_s3_target_gives_an_s3_store_with_joined_keys():
    target = ResultsTarget(
        uri="s3://bucket/ns/p/1", s3=S3Target(bucket="bucket", prefix="ns/p/1", endpoint_url="http://127.0.0.1:9")
    )
    store = open_results_store(target)
    assert isinstance(store, S3ResultsStore)
    assert store._key("input/a.yaml") == "ns/p/1/input/a.yaml"
    assert store.uri_for("result.json") == "s3://bucket/ns/p/1/result.json"


@pytest.mark.parametrize(
    "target",
    [
        ResultsTarget(uri="x"),
        ResultsTarget(uri="x", local_dir="/results/a", s3=S3Target(bucket="b", prefix="p")),
    ],
)
def test_a_target_needs_exactly_one_store(target):
    with pytest.raises(WorkerError) as caught:
        open_results_store(target)
    assert caught.value.error_class == ErrorClass.INVALID_INPUT

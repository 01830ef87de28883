"""The MSA store on a directory (a PVC): hits, misses, whole keys only (prepare/msa_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from boltz_contract import ErrorClass, WorkerError
from boltz_contract.msa import MSA_COMPLETE_MARKER, MsaStoreS3, MsaStoreTarget
from boltz_worker.prepare.msa_store import LocalMsaStore, open_msa_store

KEY = "ab" * 32


def msa_files(tmp_path: Path, *texts: str) -> list[Path]:
    files = []
    for i, text in enumerate(texts):
        path = tmp_path / "made" / f"m{i}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(path)
    return files


@pytest.fixture
def store(tmp_path) -> LocalMsaStore:
    return LocalMsaStore("pvc://msas/base", tmp_path / "store")


def test_a_miss_then_a_hit_read_in_place(store, tmp_path):
    assert store.get(KEY, 2, tmp_path / "dl") is None
    store.put(KEY, msa_files(tmp_path, "key,sequence\n-1,MKV\n", "key,sequence\n-1,GSH\n"))
    found = store.get(KEY, 2, tmp_path / "dl")
    assert found == [store.base / KEY / "0.csv", store.base / KEY / "1.csv"]
    assert [p.read_text() for p in found] == ["key,sequence\n-1,MKV\n", "key,sequence\n-1,GSH\n"]
    assert (store.base / KEY / MSA_COMPLETE_MARKER).is_file()
    assert not (tmp_path / "dl").exists()  # nothing copied: the PVC is read where it is mounted


def test_a_key_is_renamed_into_place_whole_leaving_no_temporary_folder(store, tmp_path):
    store.put(KEY, msa_files(tmp_path, "a"))
    assert sorted(p.name for p in store.base.iterdir()) == [KEY]
    assert (store.base / KEY).stat().st_mode & 0o755 == 0o755  # the GPU Job's pod reads it


def test_a_half_written_key_without_marker_is_a_miss_and_is_replaced(store, tmp_path):
    half = store.base / KEY
    half.mkdir(parents=True)
    (half / "0.csv").write_text("half")
    assert store.get(KEY, 1, tmp_path / "dl") is None
    store.put(KEY, msa_files(tmp_path, "whole"))
    assert store.get(KEY, 1, tmp_path / "dl")[0].read_text() == "whole"
    assert sorted(p.name for p in store.base.iterdir()) == [KEY]


def test_a_key_with_fewer_files_than_asked_is_a_miss(store, tmp_path):
    store.put(KEY, msa_files(tmp_path, "one"))
    assert store.get(KEY, 2, tmp_path / "dl") is None


def test_a_second_writer_of_a_key_keeps_the_first_copy(store, tmp_path):
    store.put(KEY, msa_files(tmp_path, "first"))
    store.put(KEY, msa_files(tmp_path, "second"))
    assert store.get(KEY, 1, tmp_path / "dl")[0].read_text() == "first"
    assert sorted(p.name for p in store.base.iterdir()) == [KEY]


def test_an_unwritable_store_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = LocalMsaStore("pvc://msas", blocker / "store")
    with pytest.raises(WorkerError) as raised:
        store.put(KEY, msa_files(tmp_path, "x"))
    assert raised.value.error_class == ErrorClass.RESULTS_STORE_ERROR
    assert "pvc://msas" in raised.value.message


def test_open_needs_exactly_one_backend():
    both = MsaStoreTarget(uri="x", local_dir="/msa-store/x", s3=MsaStoreS3(bucket="b", prefix="p"))
    with pytest.raises(WorkerError):
        open_msa_store(both)
    assert isinstance(open_msa_store(MsaStoreTarget(uri="pvc://c/x", local_dir="/msa-store/x")), LocalMsaStore)

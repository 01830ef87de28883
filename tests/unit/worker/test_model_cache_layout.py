"""The bundles' layouts (boltz2, boltzgen), the manifest, safe archive extraction."""

from __future__ import annotations

import io
import tarfile
import typing

import pytest
from pydantic import ValidationError

from boltz_contract import ErrorClass, PopulateRun, WorkerError
from boltz_worker.model_cache.manifest import FileEntry, ModelManifest
from boltz_worker.model_cache.model_catalog import BOLTZ2, BOLTZGEN, BUNDLES, bundle
from boltz_worker.model_cache.populate import extract_directory, safe_members


def make_cache(directory, skip=()):
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt", "mols.tar"):
        if name not in skip:
            (directory / name).write_bytes(b"x")
    if "mols" not in skip:
        (directory / "mols").mkdir()
        (directory / "mols" / "ALA.pkl").write_bytes(b"x")


def test_the_boltz2_bundle_is_what_download_boltz2_checks_for():
    assert bundle("boltz2") is BOLTZ2
    assert set(BOLTZ2.files) == {"boltz2_conf.ckpt", "boltz2_aff.ckpt", "mols.tar"}
    assert [(e.archive, e.directory) for e in BOLTZ2.extracted] == [("mols.tar", "mols")]
    assert BOLTZ2.file_path("mols.tar") == "boltz2/mols.tar"
    assert BOLTZ2.dir_path("mols") == "boltz2/mols/"


def test_hugging_face_urls():
    assert BOLTZ2.hf_url("https://huggingface.co", "boltz2_aff.ckpt") == (
        "https://huggingface.co/boltz-community/boltz-2/resolve/main/boltz2_aff.ckpt"
    )
    assert BOLTZ2.hf_url("http://mirror.local/hf/", "mols.tar") == (
        "http://mirror.local/hf/boltz-community/boltz-2/resolve/main/mols.tar"
    )


def test_the_known_bundles_are_what_populate_runs_accept():
    assert BUNDLES == {"boltz2": BOLTZ2, "boltzgen": BOLTZGEN}
    assert bundle("boltzgen") is BOLTZGEN
    (accepted,) = typing.get_args(PopulateRun.model_fields["bundles"].annotation)
    assert set(typing.get_args(accepted)) == set(BUNDLES)
    assert PopulateRun(bundles=["boltz2", "boltzgen"]).bundles == ["boltz2", "boltzgen"]
    with pytest.raises(ValidationError):
        PopulateRun(bundles=["boltz1"])


def test_unknown_bundle():
    with pytest.raises(ValueError, match="unknown model bundle 'boltz1'; known: boltz2, boltzgen"):
        bundle("boltz1")


def test_a_complete_cache_has_no_problems(tmp_path):
    make_cache(tmp_path)
    assert BOLTZ2.cache_problems(tmp_path) == []


def test_cache_problems_name_what_is_missing(tmp_path):
    make_cache(tmp_path, skip=("boltz2_aff.ckpt", "mols"))
    assert BOLTZ2.cache_problems(tmp_path) == ["missing boltz2_aff.ckpt", "missing mols/"]


def test_the_archive_must_stay_after_extraction(tmp_path):
    make_cache(tmp_path, skip=("mols.tar",))
    assert BOLTZ2.cache_problems(tmp_path) == ["missing mols.tar"]


def test_empty_files_and_directories_are_problems(tmp_path):
    make_cache(tmp_path, skip=("mols",))
    (tmp_path / "mols").mkdir()
    (tmp_path / "boltz2_conf.ckpt").write_bytes(b"")
    assert BOLTZ2.cache_problems(tmp_path) == ["boltz2_conf.ckpt is empty", "mols/ is empty"]


# ---------------------------------------------------------------------------------------------- manifest


def test_manifest_round_trip_and_matching(tmp_path):
    (tmp_path / "boltz2").mkdir()
    (tmp_path / "boltz2" / "a.ckpt").write_bytes(b"12345")
    manifest = ModelManifest.load(tmp_path)
    manifest.files["boltz2/a.ckpt"] = FileEntry(bytes=5, sha256="ab" * 32, source="s", verified_at="t")
    manifest.save(tmp_path)
    loaded = ModelManifest.load(tmp_path)
    assert loaded.files == manifest.files and loaded.created_at and loaded.updated_at
    assert loaded.matching_file("boltz2/a.ckpt", tmp_path / "boltz2" / "a.ckpt") is not None
    (tmp_path / "boltz2" / "a.ckpt").write_bytes(b"123456")
    assert loaded.matching_file("boltz2/a.ckpt", tmp_path / "boltz2" / "a.ckpt") is None
    assert loaded.matching_file("boltz2/b.ckpt", tmp_path / "boltz2" / "b.ckpt") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boltz2", "manifest.json"]  # no temp file left


def test_an_unreadable_manifest_counts_as_empty(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    assert ModelManifest.load(tmp_path).files == {}


# ---------------------------------------------------------------------------------------------- archives


def tar_with(members: list[tarfile.TarInfo], path):
    with tarfile.open(path, "w") as tar:
        for member in members:
            data = b"content" if member.isfile() else None
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name):
    return tarfile.TarInfo(name)


def link_member(name, target, kind=tarfile.SYMTYPE):
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = target
    return member


def dir_member(name):
    member = tarfile.TarInfo(name)
    member.type = tarfile.DIRTYPE
    return member


def test_extraction_renames_the_top_directory_into_place(tmp_path):
    archive = tar_with([dir_member("mols"), file_member("mols/ALA.pkl"), file_member("./mols/GLY.pkl")],
                       tmp_path / "mols.tar")  # fmt: skip
    target = tmp_path / "mols"
    extract_directory(archive, "mols", target)
    assert sorted(p.name for p in target.iterdir()) == ["ALA.pkl", "GLY.pkl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mols", "mols.tar"]  # no temp dir left


def test_extraction_replaces_an_older_directory(tmp_path):
    target = tmp_path / "mols"
    target.mkdir()
    (target / "OLD.pkl").write_bytes(b"old")
    archive = tar_with([file_member("mols/NEW.pkl")], tmp_path / "mols.tar")
    extract_directory(archive, "mols", target)
    assert [p.name for p in target.iterdir()] == ["NEW.pkl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mols", "mols.tar"]


@pytest.mark.parametrize(
    "member",
    [
        file_member("/etc/passwd"),
        file_member("mols/../../escape.pkl"),
        file_member("other/ALA.pkl"),
        link_member("mols/link.pkl", "/etc/passwd"),
        link_member("mols/hard.pkl", "mols/ALA.pkl", tarfile.LNKTYPE),
    ],
    ids=["absolute", "dotdot", "outside-top", "symlink", "hardlink"],
)
def test_unsafe_members_refuse_the_whole_archive(tmp_path, member):
    archive = tar_with([file_member("mols/ALA.pkl"), member], tmp_path / "mols.tar")
    target = tmp_path / "mols"
    with pytest.raises(WorkerError) as caught:
        extract_directory(archive, "mols", target)
    assert caught.value.error_class == ErrorClass.MODEL_CACHE_UNUSABLE
    assert repr(member.name) in caught.value.message
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mols.tar"]


def test_safe_members_accepts_plain_files_and_directories(tmp_path):
    archive = tar_with([dir_member("mols"), file_member("mols/ALA.pkl")], tmp_path / "mols.tar")
    with tarfile.open(archive) as tar:
        assert [m.name for m in safe_members(tar, "mols.tar", "mols")] == ["mols", "mols/ALA.pkl"]


def test_an_archive_without_the_expected_top_directory(tmp_path):
    archive = tar_with([], tmp_path / "mols.tar")
    with pytest.raises(WorkerError, match="no top-level mols/ directory"):
        extract_directory(archive, "mols", tmp_path / "mols")

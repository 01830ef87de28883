"""`boltz-worker populate` against a Hugging Face look-alike on loopback (redirects, X-Linked-* headers, Range)."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from pathlib import Path

import pytest

from boltz_contract import ErrorClass, HuggingFaceSource, PopulateRun, PopulateSource, WorkerError
from boltz_worker.boltzgen_runs.design import check_models
from support.worker import (
    BOLTZGEN_DATASET,
    BOLTZGEN_REPO,
    boltzgen_models_under,
    bundle_files,
    make_mols_tar,
    sha256,
)

FILES = ("boltz2_conf.ckpt", "boltz2_aff.ckpt", "mols.tar")
BOLTZGEN_FILES = ("boltzgen1_diverse.ckpt", "boltzgen1_adherence.ckpt", "boltzgen1_ifold.ckpt",
                  "boltz2_conf_final.ckpt", "boltz2_aff.ckpt", "mols.zip")  # fmt: skip


def hf_run(models_dir, endpoint: str, token_env: str | None = None, bundles=("boltz2",)) -> PopulateRun:
    source = PopulateSource(huggingface=HuggingFaceSource(endpoint=endpoint, token_env=token_env))
    return PopulateRun(models_dir=str(models_dir), source=source, bundles=list(bundles))


def manifest_of(models_dir) -> dict:
    return json.loads((models_dir / "manifest.json").read_text())


def leftovers(models_dir) -> list[str]:
    """Anything populate should not leave behind: partial downloads, temp dirs, temp files."""
    return sorted(
        p.name for p in models_dir.rglob("*") if p.name.endswith((".partial", ".tmp")) or ".extract-" in p.name
    )


def test_full_populate_lays_out_the_cache_and_its_manifest(tmp_path, fake_hub, model_files, run_worker):
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0, outcome.summary
    for name in FILES:
        assert (models / "boltz2" / name).read_bytes() == model_files[name]
    assert sorted(p.name for p in (models / "boltz2" / "mols").iterdir()) == ["ALA.pkl", "GLY.pkl", "SAH.pkl"]
    assert leftovers(models) == []

    manifest = manifest_of(models)
    assert manifest["contract"] == "v1" and manifest["created_at"] and manifest["updated_at"]
    for name in FILES:
        entry = manifest["files"][f"boltz2/{name}"]
        assert entry["bytes"] == len(model_files[name])
        assert entry["sha256"] == sha256(model_files[name])
        assert entry["source"] == f"{fake_hub.url}/boltz-community/boltz-2/resolve/main/{name}"
        assert entry["verified_at"]
    mols = manifest["directories"]["boltz2/mols/"]
    assert mols["files"] == 3 and mols["extracted_from"] == "boltz2/mols.tar"
    assert mols["archive_sha256"] == sha256(model_files["mols.tar"])

    summary = outcome.summary
    assert summary["ok"] is True
    assert [f["path"] for f in summary["files"]] == [*(f"boltz2/{n}" for n in FILES), "boltz2/mols/"]
    assert summary["files"][0]["sha256"] == sha256(model_files["boltz2_conf.ckpt"])
    assert summary["total_bytes"] == sum(len(c) for c in model_files.values()) + mols["bytes"]
    assert summary["duration_seconds"] >= 0
    assert summary["message"].startswith("3 downloaded, 0 already present")


def test_the_sha256_comes_from_the_redirect_not_the_cdn(tmp_path, fake_hub, run_worker):
    run_worker("populate", hf_run(tmp_path / "models", fake_hub.url))
    resolve_requests = [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert {r.method for r in resolve_requests} == {"HEAD"}  # metadata read before following the redirect
    assert {r.path.split("/")[-1] for r in fake_hub.gets("/cdn/")} == set(FILES)


def test_a_cut_connection_resumes_with_a_range_request(tmp_path, fake_hub, model_files, run_worker):
    fake_hub.cut_next_get["boltz2_conf.ckpt"] = 100_000
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0, outcome.summary
    gets = fake_hub.gets("/cdn/boltz2_conf.ckpt")
    assert len(gets) == 2
    assert "Range" not in gets[0].headers
    assert gets[1].headers["Range"] == "bytes=100000-"
    assert (models / "boltz2" / "boltz2_conf.ckpt").read_bytes() == model_files["boltz2_conf.ckpt"]


def test_a_server_ignoring_range_means_starting_over(tmp_path, fake_hub, model_files, run_worker):
    fake_hub.cut_next_get["boltz2_aff.ckpt"] = 50_000
    fake_hub.ignore_range = True
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0, outcome.summary
    assert fake_hub.gets("/cdn/boltz2_aff.ckpt")[1].headers["Range"] == "bytes=50000-"
    assert (models / "boltz2" / "boltz2_aff.ckpt").read_bytes() == model_files["boltz2_aff.ckpt"]


def test_bytes_not_matching_the_published_sha256_are_rejected(tmp_path, fake_hub, model_files, run_worker):
    good = model_files["boltz2_aff.ckpt"]
    fake_hub.served_bytes["boltz2_aff.ckpt"] = good[:-1] + bytes([good[-1] ^ 0xFF])
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 15
    summary = outcome.summary
    assert summary["error_class"] == "ChecksumMismatch"
    assert "boltz2/boltz2_aff.ckpt" in summary["message"]
    assert sha256(good) in summary["message"]
    assert sha256(fake_hub.served_bytes["boltz2_aff.ckpt"]) in summary["message"]
    assert not (models / "boltz2" / "boltz2_aff.ckpt").exists()
    assert leftovers(models) == []


def test_a_second_run_downloads_nothing(tmp_path, fake_hub, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    first_manifest = manifest_of(models)
    fake_hub.clear()

    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0
    assert fake_hub.requests == []  # not even a HEAD: the manifest vouches for the files
    assert outcome.summary["message"].startswith("0 downloaded, 3 already present")
    assert manifest_of(models)["files"] == first_manifest["files"]
    assert manifest_of(models)["directories"] == first_manifest["directories"]


def test_files_present_but_not_in_the_manifest_are_verified_by_hashing(tmp_path, fake_hub, model_files, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    recorded = manifest_of(models)["files"]
    (models / "manifest.json").unlink()
    fake_hub.clear()

    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0
    assert fake_hub.gets() == []  # HEADs for the expected sha256, no GET
    assert {k: v["sha256"] for k, v in manifest_of(models)["files"].items()} == {
        k: v["sha256"] for k, v in recorded.items()
    }


def test_a_corrupt_unrecorded_file_is_downloaded_again(tmp_path, fake_hub, model_files, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    conf = models / "boltz2" / "boltz2_conf.ckpt"
    conf.write_bytes(b"\0" * len(model_files["boltz2_conf.ckpt"]))  # same size, wrong bytes
    (models / "manifest.json").unlink()
    fake_hub.clear()

    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 0
    assert [r.path for r in fake_hub.gets()] == ["/cdn/boltz2_conf.ckpt"]
    assert conf.read_bytes() == model_files["boltz2_conf.ckpt"]


def test_a_new_archive_replaces_the_extracted_directory(tmp_path, fake_hub, model_files, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    fake_hub.files["mols.tar"] = make_mols_tar(names=("ALA", "NAG"))
    (models / "boltz2" / "mols.tar").unlink()

    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    assert sorted(p.name for p in (models / "boltz2" / "mols").iterdir()) == ["ALA.pkl", "NAG.pkl"]
    assert leftovers(models) == [] and not list((models / "boltz2").glob(".mols*"))


def test_a_mirror_endpoint_with_a_token(tmp_path, fake_hub, model_files, run_worker, monkeypatch):
    monkeypatch.setenv("MIRROR_TOKEN", "secret-token")
    fake_hub.cdn_host = "localhost"  # the CDN is another host: the token must not travel there
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, f"{fake_hub.url}/mirror", token_env="MIRROR_TOKEN"))

    assert outcome.exit_code == 0, outcome.summary
    resolves = [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert {r.path for r in resolves} == {f"/mirror/boltz-community/boltz-2/resolve/main/{n}" for n in FILES}
    assert {r.headers.get("Authorization") for r in resolves} == {"Bearer secret-token"}
    assert all("Authorization" not in r.headers for r in fake_hub.gets("/cdn/"))
    assert manifest_of(models)["files"]["boltz2/mols.tar"]["source"].startswith(f"{fake_hub.url}/mirror/")


def test_transient_server_errors_are_retried(tmp_path, fake_hub, run_worker):
    fake_hub.fail_next = [503, 429]
    outcome = run_worker("populate", hf_run(tmp_path / "models", fake_hub.url))
    assert outcome.exit_code == 0, outcome.summary
    assert fake_hub.fail_next == []


def test_a_missing_file_on_the_source_fails_without_retrying(tmp_path, fake_hub, run_worker):
    del fake_hub.files["boltz2_aff.ckpt"]
    outcome = run_worker("populate", hf_run(tmp_path / "models", fake_hub.url))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert "boltz2_aff.ckpt: HTTP 404" in outcome.summary["message"]
    assert len([r for r in fake_hub.requests if r.path.endswith("boltz2_aff.ckpt")]) == 1


def test_an_unreachable_source_is_unavailable_after_bounded_retries(tmp_path, run_worker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once the socket is closed
    outcome = run_worker("populate", hf_run(tmp_path / "models", f"http://127.0.0.1:{closed_port}"))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert "after 3 attempts" in outcome.summary["message"]


def test_an_unsafe_archive_is_refused(tmp_path, fake_hub, run_worker):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        evil = tarfile.TarInfo("mols/../../evil.pkl")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    fake_hub.files["mols.tar"] = buffer.getvalue()
    models = tmp_path / "models"

    outcome = run_worker("populate", hf_run(models, fake_hub.url))

    assert outcome.exit_code == 11
    assert "unsafe or unexpected member 'mols/../../evil.pkl'" in outcome.summary["message"]
    assert not (models / "boltz2" / "mols").exists()
    assert not list(tmp_path.rglob("evil.pkl"))


# ---------------------------------------------------------------------------------------------- the boltzgen bundle


def test_the_boltzgen_bundle_comes_from_its_model_repo_and_its_dataset_repo(
    tmp_path, fake_hub, boltzgen_files, run_worker
):
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url, bundles=["boltzgen"]))

    assert outcome.exit_code == 0, outcome.summary
    expected = bundle_files(boltzgen_files)
    assert sorted(p.name for p in (models / "boltzgen").iterdir()) == sorted(BOLTZGEN_FILES)
    for name in BOLTZGEN_FILES:
        assert (models / "boltzgen" / name).read_bytes() == expected[name]
    assert not (models / "boltz2").exists() and leftovers(models) == []

    manifest = manifest_of(models)
    assert set(manifest["files"]) == {f"boltzgen/{n}" for n in BOLTZGEN_FILES}
    assert manifest["directories"] == {}  # boltzgen reads mols.zip itself: nothing extracted
    for repo, files in boltzgen_files.items():
        for name, content in files.items():
            entry = manifest["files"][f"boltzgen/{name}"]
            assert (entry["bytes"], entry["sha256"]) == (len(content), sha256(content))
            assert entry["source"] == f"{fake_hub.url}/{repo}/resolve/main/{name}"
    assert manifest["files"]["boltzgen/mols.zip"]["source"] == (
        f"{fake_hub.url}/datasets/boltzgen/inference-data/resolve/main/mols.zip"
    )

    summary = outcome.summary
    assert [f["path"] for f in summary["files"]] == [f"boltzgen/{n}" for n in BOLTZGEN_FILES]
    assert summary["total_bytes"] == sum(len(c) for c in expected.values())
    assert summary["message"].startswith("6 downloaded, 0 already present")


def test_the_design_worker_accepts_a_populated_boltzgen_cache(tmp_path, fake_hub, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url, bundles=["boltzgen"])).exit_code == 0

    consumer = boltzgen_models_under(models)
    populated = set(manifest_of(models)["files"])
    used = {str(Path(p).relative_to(models)) for p in consumer.paths()}
    assert used == populated  # every path the design worker gives boltzgen is a verified file, and all are used
    check_models(consumer)

    (models / "boltzgen" / "boltzgen1_ifold.ckpt").unlink()
    with pytest.raises(WorkerError) as e:
        check_models(consumer)
    assert e.value.error_class is ErrorClass.MODEL_CACHE_UNUSABLE


def test_both_bundles_in_one_run_each_from_its_own_repositories(
    tmp_path, fake_hub, model_files, boltzgen_files, run_worker
):
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url, bundles=["boltz2", "boltzgen"]))

    assert outcome.exit_code == 0, outcome.summary
    # Both bundles hold a boltz2_aff.ckpt; each has the bytes of its own repository.
    assert (models / "boltz2" / "boltz2_aff.ckpt").read_bytes() == model_files["boltz2_aff.ckpt"]
    assert (models / "boltzgen" / "boltz2_aff.ckpt").read_bytes() == boltzgen_files[BOLTZGEN_REPO]["boltz2_aff.ckpt"]
    assert model_files["boltz2_aff.ckpt"] != boltzgen_files[BOLTZGEN_REPO]["boltz2_aff.ckpt"]
    assert sorted(p.name for p in (models / "boltz2" / "mols").iterdir()) == ["ALA.pkl", "GLY.pkl", "SAH.pkl"]

    summary = outcome.summary
    assert [f["path"] for f in summary["files"]] == [
        *(f"boltz2/{n}" for n in FILES),
        "boltz2/mols/",
        *(f"boltzgen/{n}" for n in BOLTZGEN_FILES),
    ]
    mols_bytes = manifest_of(models)["directories"]["boltz2/mols/"]["bytes"]
    assert summary["total_bytes"] == (
        sum(len(c) for c in model_files.values())
        + mols_bytes
        + sum(len(c) for c in bundle_files(boltzgen_files).values())
    )
    assert summary["message"].startswith("9 downloaded, 0 already present")
    check_models(boltzgen_models_under(models))


def test_adding_the_boltzgen_bundle_later_fetches_only_boltzgen(tmp_path, fake_hub, run_worker):
    models = tmp_path / "models"
    assert run_worker("populate", hf_run(models, fake_hub.url)).exit_code == 0
    boltz2_entries = manifest_of(models)["files"]
    fake_hub.clear()

    outcome = run_worker("populate", hf_run(models, fake_hub.url, bundles=["boltz2", "boltzgen"]))

    assert outcome.exit_code == 0, outcome.summary
    assert outcome.summary["message"].startswith("6 downloaded, 3 already present")
    assert sorted(r.path for r in fake_hub.gets()) == sorted(
        [*(f"/cdn/{BOLTZGEN_REPO}/{n}" for n in BOLTZGEN_FILES if n != "mols.zip"), f"/cdn/{BOLTZGEN_DATASET}/mols.zip"]
    )
    manifest = manifest_of(models)["files"]
    assert {k: v for k, v in manifest.items() if k.startswith("boltz2/")} == boltz2_entries


def test_a_cut_dataset_download_resumes_and_a_corrupt_one_is_rejected(tmp_path, fake_hub, boltzgen_files, run_worker):
    key = f"{BOLTZGEN_DATASET}/mols.zip"
    good = boltzgen_files[BOLTZGEN_DATASET]["mols.zip"]
    fake_hub.cut_next_get[key] = len(good) // 2
    models = tmp_path / "models"
    outcome = run_worker("populate", hf_run(models, fake_hub.url, bundles=["boltzgen"]))

    assert outcome.exit_code == 0, outcome.summary
    gets = fake_hub.gets(f"/cdn/{key}")
    assert len(gets) == 2 and gets[1].headers["Range"] == f"bytes={len(good) // 2}-"
    assert (models / "boltzgen" / "mols.zip").read_bytes() == good

    fake_hub.served_bytes[key] = good[:-1] + bytes([good[-1] ^ 0xFF])
    other = tmp_path / "other"
    outcome = run_worker("populate", hf_run(other, fake_hub.url, bundles=["boltzgen"]))
    assert outcome.exit_code == 15
    assert outcome.summary["error_class"] == "ChecksumMismatch"
    assert "boltzgen/mols.zip" in outcome.summary["message"] and sha256(good) in outcome.summary["message"]
    assert not (other / "boltzgen" / "mols.zip").exists()


def test_a_mirror_serves_the_dataset_path_too_with_the_token(tmp_path, fake_hub, run_worker, monkeypatch):
    monkeypatch.setenv("MIRROR_TOKEN", "secret-token")
    fake_hub.cdn_host = "localhost"
    models = tmp_path / "models"
    outcome = run_worker(
        "populate", hf_run(models, f"{fake_hub.url}/mirror", token_env="MIRROR_TOKEN", bundles=["boltzgen"])
    )

    assert outcome.exit_code == 0, outcome.summary
    resolves = [r for r in fake_hub.requests if "/resolve/" in r.path]
    assert {r.path for r in resolves} == {
        *(f"/mirror/{BOLTZGEN_REPO}/resolve/main/{n}" for n in BOLTZGEN_FILES if n != "mols.zip"),
        f"/mirror/{BOLTZGEN_DATASET}/resolve/main/mols.zip",
    }
    assert {r.headers.get("Authorization") for r in resolves} == {"Bearer secret-token"}
    assert all("Authorization" not in r.headers for r in fake_hub.gets("/cdn/"))


def test_a_mirror_without_the_dataset_repo_names_the_dataset_url(tmp_path, fake_hub, run_worker):
    del fake_hub.repos[BOLTZGEN_DATASET]
    outcome = run_worker("populate", hf_run(tmp_path / "models", fake_hub.url, bundles=["boltzgen"]))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert (
        f"{fake_hub.url}/datasets/boltzgen/inference-data/resolve/main/mols.zip: HTTP 404" in outcome.summary["message"]
    )

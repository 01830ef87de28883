"""`boltz-worker populate` from an S3 prefix (real SeaweedFS) and from a preloaded volume (verify only)."""

from __future__ import annotations

import json

import pytest

from boltz_contract import PopulateRun, PopulateSource, S3Source
from boltz_worker.boltzgen_runs.design import check_models
from support.worker import boltzgen_models_under, bundle_files, sha256, write_boltzgen_cache, write_model_cache

BOTH = ["boltz2", "boltzgen"]


def upload_bundle(bucket, prefix: str, model_files: dict[str, bytes], bundle: str = "boltz2") -> None:
    client = bucket.client()
    for name, content in model_files.items():
        client.put_object(Bucket=bucket.name, Key=f"{prefix}/{bundle}/{name}", Body=content)


def s3_run(models_dir, bucket, prefix: str, bundles=("boltz2",)) -> PopulateRun:
    source = PopulateSource(s3=S3Source(bucket=bucket.name, prefix=prefix, endpoint_url=bucket.endpoint_url))
    return PopulateRun(models_dir=str(models_dir), source=source, bundles=list(bundles))


def test_populate_from_an_s3_prefix(tmp_path, s3_env, s3_bucket, model_files, run_worker):
    upload_bundle(s3_bucket, "mirrors/boltz", model_files)
    models = tmp_path / "models"

    outcome = run_worker("populate", s3_run(models, s3_bucket, "mirrors/boltz"))

    assert outcome.exit_code == 0, outcome.summary
    manifest = json.loads((models / "manifest.json").read_text())
    for name, content in model_files.items():
        assert (models / "boltz2" / name).read_bytes() == content
        entry = manifest["files"][f"boltz2/{name}"]
        assert entry["sha256"] == sha256(content)
        assert entry["source"] == f"s3://{s3_bucket.name}/mirrors/boltz/boltz2/{name}"
    assert sorted(p.name for p in (models / "boltz2" / "mols").iterdir()) == ["ALA.pkl", "GLY.pkl", "SAH.pkl"]


def test_populate_both_bundles_from_an_s3_prefix(tmp_path, s3_env, s3_bucket, model_files, boltzgen_files, run_worker):
    boltzgen = bundle_files(boltzgen_files)
    upload_bundle(s3_bucket, "air-gap", model_files)
    upload_bundle(s3_bucket, "air-gap", boltzgen, bundle="boltzgen")
    models = tmp_path / "models"

    outcome = run_worker("populate", s3_run(models, s3_bucket, "air-gap", bundles=BOTH))

    assert outcome.exit_code == 0, outcome.summary
    manifest = json.loads((models / "manifest.json").read_text())
    for name, content in boltzgen.items():
        assert (models / "boltzgen" / name).read_bytes() == content
        entry = manifest["files"][f"boltzgen/{name}"]
        assert entry["sha256"] == sha256(content)
        assert entry["source"] == f"s3://{s3_bucket.name}/air-gap/boltzgen/{name}"
    assert (models / "boltz2" / "boltz2_aff.ckpt").read_bytes() == model_files["boltz2_aff.ckpt"]
    assert list(manifest["directories"]) == ["boltz2/mols/"]
    assert [f["path"] for f in outcome.summary["files"]] == [
        *(f"boltz2/{n}" for n in model_files),
        "boltz2/mols/",
        *(f"boltzgen/{n}" for n in boltzgen),
    ]
    check_models(boltzgen_models_under(models))


def test_a_missing_boltzgen_object_is_named(tmp_path, s3_env, s3_bucket, boltzgen_files, run_worker):
    upload_bundle(s3_bucket, "gen", {k: v for k, v in bundle_files(boltzgen_files).items() if k != "mols.zip"},
                  bundle="boltzgen")  # fmt: skip
    outcome = run_worker("populate", s3_run(tmp_path / "models", s3_bucket, "gen", bundles=["boltzgen"]))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert f"s3://{s3_bucket.name}/gen/boltzgen/mols.zip: not found" in outcome.summary["message"]


def test_a_copied_cache_s_manifest_on_s3_provides_the_expected_checksums(
    tmp_path, s3_env, s3_bucket, model_files, run_worker
):
    # Populate once, copy the volume to S3 as it is (manifest included), then corrupt one object there.
    first = tmp_path / "first"
    upload_bundle(s3_bucket, "seed", model_files)
    assert run_worker("populate", s3_run(first, s3_bucket, "seed")).exit_code == 0
    client = s3_bucket.client()
    client.put_object(Bucket=s3_bucket.name, Key="copy/manifest.json", Body=(first / "manifest.json").read_bytes())
    upload_bundle(s3_bucket, "copy", {**model_files, "boltz2_conf.ckpt": b"x" * len(model_files["boltz2_conf.ckpt"])})

    outcome = run_worker("populate", s3_run(tmp_path / "second", s3_bucket, "copy"))

    assert outcome.exit_code == 15
    assert outcome.summary["error_class"] == "ChecksumMismatch"
    assert sha256(model_files["boltz2_conf.ckpt"]) in outcome.summary["message"]
    assert not (tmp_path / "second" / "boltz2" / "boltz2_conf.ckpt").exists()


def test_a_missing_s3_object_is_named(tmp_path, s3_env, s3_bucket, model_files, run_worker):
    upload_bundle(s3_bucket, "partial", {k: v for k, v in model_files.items() if k != "boltz2_aff.ckpt"})
    outcome = run_worker("populate", s3_run(tmp_path / "models", s3_bucket, "partial"))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert f"s3://{s3_bucket.name}/partial/boltz2/boltz2_aff.ckpt: not found" in outcome.summary["message"]


def test_wrong_s3_credentials_are_reported(tmp_path, s3_env, s3_bucket, model_files, run_worker, monkeypatch):
    upload_bundle(s3_bucket, "p", model_files)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    outcome = run_worker("populate", s3_run(tmp_path / "models", s3_bucket, "p"))
    assert outcome.exit_code == 1
    assert outcome.summary["error_class"] == "SourceUnavailable"
    assert "access denied" in outcome.summary["message"] or "SignatureDoesNotMatch" in outcome.summary["message"]


# ---------------------------------------------------------------------------------------------- preloaded


def preloaded_run(models_dir, bundles=("boltz2",)) -> PopulateRun:
    return PopulateRun(models_dir=str(models_dir), source=PopulateSource(preloaded=True), bundles=list(bundles))


def test_a_preloaded_volume_is_verified_and_recorded(tmp_path, model_files, run_worker):
    models = tmp_path / "models"
    write_model_cache(models / "boltz2", model_files)

    outcome = run_worker("populate", preloaded_run(models))

    assert outcome.exit_code == 0, outcome.summary
    manifest = json.loads((models / "manifest.json").read_text())
    for name, content in model_files.items():
        entry = manifest["files"][f"boltz2/{name}"]
        assert (entry["bytes"], entry["sha256"], entry["source"]) == (len(content), sha256(content), "preloaded")
    assert manifest["directories"]["boltz2/mols/"]["files"] == 3
    assert outcome.summary["message"].startswith("0 downloaded, 3 already present")


@pytest.mark.parametrize("missing", ["boltz2_aff.ckpt", "mols.tar"])
def test_a_preloaded_volume_missing_a_file_is_unusable(tmp_path, model_files, run_worker, missing):
    models = tmp_path / "models"
    write_model_cache(models / "boltz2", model_files)
    (models / "boltz2" / missing).unlink()

    outcome = run_worker("populate", preloaded_run(models))

    assert outcome.exit_code == 11
    assert outcome.summary["error_class"] == "ModelCacheUnusable"
    assert f"missing {missing}" in outcome.summary["message"]
    assert not (models / "manifest.json").exists()


def test_a_preloaded_volume_without_mols_is_unusable(tmp_path, model_files, run_worker):
    models = tmp_path / "models"
    (models / "boltz2").mkdir(parents=True)
    for name, content in model_files.items():
        (models / "boltz2" / name).write_bytes(content)
    outcome = run_worker("populate", preloaded_run(models))
    assert outcome.exit_code == 11
    assert "missing mols/" in outcome.summary["message"]


def test_a_preloaded_volume_with_both_bundles_is_verified(tmp_path, model_files, boltzgen_files, run_worker):
    models = tmp_path / "models"
    write_model_cache(models / "boltz2", model_files)
    write_boltzgen_cache(models / "boltzgen", boltzgen_files)

    outcome = run_worker("populate", preloaded_run(models, bundles=BOTH))

    assert outcome.exit_code == 0, outcome.summary
    manifest = json.loads((models / "manifest.json").read_text())
    for name, content in bundle_files(boltzgen_files).items():
        entry = manifest["files"][f"boltzgen/{name}"]
        assert (entry["bytes"], entry["sha256"], entry["source"]) == (len(content), sha256(content), "preloaded")
    assert list(manifest["directories"]) == ["boltz2/mols/"]
    assert outcome.summary["message"].startswith("0 downloaded, 9 already present")
    assert [f["path"] for f in outcome.summary["files"]][-6:] == [f"boltzgen/{n}" for n in bundle_files(boltzgen_files)]
    check_models(boltzgen_models_under(models))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [("remove", "missing mols.zip"), ("empty", "boltzgen1_ifold.ckpt is empty"), ("no-bundle", "missing mols.zip")],
)
def test_a_preloaded_volume_with_an_incomplete_boltzgen_bundle_is_unusable(
    tmp_path, model_files, boltzgen_files, run_worker, damage, problem
):
    models = tmp_path / "models"
    write_model_cache(models / "boltz2", model_files)
    if damage != "no-bundle":  # no-bundle: boltzgen requested, only boltz2 preloaded
        write_boltzgen_cache(models / "boltzgen", boltzgen_files)
    if damage == "remove":
        (models / "boltzgen" / "mols.zip").unlink()
    if damage == "empty":
        (models / "boltzgen" / "boltzgen1_ifold.ckpt").write_bytes(b"")

    outcome = run_worker("populate", preloaded_run(models, bundles=BOTH))

    assert outcome.exit_code == 11
    assert outcome.summary["error_class"] == "ModelCacheUnusable"
    assert f"{models / 'boltzgen'} is unusable" in outcome.summary["message"]
    assert problem in outcome.summary["message"]
    assert not (models / "manifest.json").exists()  # refused before hashing the complete boltz2 bundle


def test_two_sources_at_once_are_refused(tmp_path, run_worker):
    run = PopulateRun(
        models_dir=str(tmp_path / "models"),
        source=PopulateSource(preloaded=True, s3=S3Source(bucket="b", prefix="p")),
    )
    outcome = run_worker("populate", run)
    assert outcome.exit_code == 10
    assert "exactly one source" in outcome.summary["message"]

"""The MSA store on the real S3 server (prepare/msa_store.py) and S3 downloads with a credentials prefix
(results/s3_inputs.py): the MSA store's own credentials (MSA_STORE_AWS_*) beside the pod's AWS_* ones."""

from __future__ import annotations

import pytest

from boltz_contract import ErrorClass, S3Download, WorkerError
from boltz_contract.msa import ENV_MSA_STORE_PREFIX, MSA_COMPLETE_MARKER, MsaStoreS3, MsaStoreTarget
from boltz_worker.prepare.msa_store import open_msa_store
from boltz_worker.results.s3_inputs import fetch_downloads

KEY = "cd" * 32


@pytest.fixture
def store_credentials(s3_bucket, monkeypatch):
    """The store's keys under MSA_STORE_*, and AWS_* keys that the server refuses (the results store's)."""
    for name, value in s3_bucket.server.env().items():
        if name.startswith("AWS_") and "KEY" in name:
            monkeypatch.setenv(ENV_MSA_STORE_PREFIX + name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "someone-else")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_bucket


def target(bucket) -> MsaStoreTarget:
    return MsaStoreTarget(uri=f"s3://{bucket.name}/msas", s3=MsaStoreS3(
        bucket=bucket.name, prefix="msas", endpoint_url=bucket.endpoint_url, region=bucket.region))  # fmt: skip


def test_miss_put_hit_with_the_marker_last(store_credentials, tmp_path):
    bucket = store_credentials
    store = open_msa_store(target(bucket))
    assert store.get(KEY, 2, tmp_path / "dl") is None
    files = []
    for i, text in enumerate(("key,sequence\n-1,MKV\n", "key,sequence\n-1,GSH\n")):
        files.append(tmp_path / f"m{i}.csv")
        files[-1].write_text(text)
    store.put(KEY, files)
    assert bucket.keys("msas/") == [f"msas/{KEY}/0.csv", f"msas/{KEY}/1.csv", f"msas/{KEY}/{MSA_COMPLETE_MARKER}"]
    found = store.get(KEY, 2, tmp_path / "dl")
    assert [p.read_text() for p in found] == [f.read_text() for f in files]


def test_files_without_the_marker_are_a_miss(store_credentials, tmp_path):
    bucket = store_credentials
    bucket.client().put_object(Bucket=bucket.name, Key=f"msas/{KEY}/0.csv", Body=b"half")
    assert open_msa_store(target(bucket)).get(KEY, 1, tmp_path / "dl") is None


def test_the_pods_own_credentials_do_not_open_the_store(s3_bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "someone-else")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "someone-else")
    for name in ("MSA_STORE_AWS_ACCESS_KEY_ID", "MSA_STORE_AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(WorkerError) as raised:
        open_msa_store(target(s3_bucket)).get(KEY, 1, tmp_path / "dl")
    assert raised.value.error_class == ErrorClass.RESULTS_STORE_ERROR
    assert f"s3://{s3_bucket.name}/msas" in raised.value.message


def test_a_download_with_the_store_prefix_uses_the_store_credentials(store_credentials, tmp_path):
    bucket = store_credentials
    bucket.client().put_object(Bucket=bucket.name, Key=f"msas/{KEY}/0.csv", Body=b"key,sequence\n-1,MKV\n")
    uri = f"s3://{bucket.name}/msas/{KEY}/0.csv"
    download = S3Download(uri=uri, dest=str(tmp_path / "msa.csv"), endpoint_url=bucket.endpoint_url,
                          region=bucket.region, credentials_env_prefix=ENV_MSA_STORE_PREFIX)  # fmt: skip
    fetch_downloads([download])
    assert (tmp_path / "msa.csv").read_bytes() == b"key,sequence\n-1,MKV\n"
    with pytest.raises(WorkerError) as raised:  # the same object with the pod's own (wrong) credentials
        fetch_downloads([download.model_copy(update={"credentials_env_prefix": "", "dest": str(tmp_path / "x")})])
    assert "denied" in raised.value.message

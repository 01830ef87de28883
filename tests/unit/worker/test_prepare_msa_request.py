"""Which chains need the MSA server, as boltz groups entities, checked against the run's msa_request
(prepare/msa_request.py), and the S3 credentials an MSA store's downloads use (results/s3util.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from boltz_contract import ErrorClass, PredictOptions, PrepareRun, WorkerError
from boltz_contract.msa import MsaRequest, MsaStoreTarget, msa_key
from boltz_worker.prepare.msa_request import protein_entities, requested_entities, with_msas
from boltz_worker.results.s3util import prefixed_credentials

P1, P2 = "MKTAYIAKQRQ", "GSHMLEDPV"
DOC = {
    "sequences": [
        {"protein": {"id": "A", "sequence": P1}},
        {"ligand": {"id": "L", "ccd": "SAH"}},
        {"protein": {"id": ["B", "C"], "sequence": P2}},
        {"protein": {"id": "D", "sequence": P1}},  # same sequence as A: the same entity
        {"protein": {"id": "E", "sequence": "MKV", "msa": "empty"}},
        {"protein": {"id": "F", "sequence": "MKVL", "msa": "inputs/f.a3m"}},
    ],
    "templates": [{"cif": "inputs/t.cif"}],
}
STORE = MsaStoreTarget(uri="pvc://msas/x", local_dir="/msa-store/x")


def run_for(chains, sequences, key=None, **options) -> PrepareRun:
    opts = PredictOptions(use_msa_server=True, **options)
    key = key or msa_key(opts.msa_server_url, opts.msa_pairing_strategy, sequences)
    request = MsaRequest(key=key, chains=chains, sequences=sequences)
    return PrepareRun(record_id="r", input_file="r.yaml", options=opts, msa_request=request, msa_store=STORE)


def test_entities_group_by_sequence_in_first_appearance_order():
    entities = protein_entities(DOC)
    assert [(e.chains, e.msa) for e in entities] == [
        (["A", "D"], None), (["B", "C"], None), (["E"], "empty"), (["F"], "inputs/f.a3m"),
    ]  # fmt: skip


def test_the_request_that_matches_the_input():
    wanted = requested_entities(DOC, run_for(["A", "B"], [P1, P2], msa_pairing_strategy="complete"))
    assert [e.sequence for e in wanted] == [P1, P2]


@pytest.mark.parametrize(
    "chains, sequences", [(["B", "A"], [P2, P1]), (["A"], [P1]), (["A", "C"], [P1, P2])]
)  # fmt: skip
def test_a_request_that_disagrees_with_the_input_is_internal(chains, sequences):
    with pytest.raises(WorkerError) as raised:
        requested_entities(DOC, run_for(chains, sequences))
    assert raised.value.error_class == ErrorClass.INTERNAL


def test_a_key_that_is_not_the_sequences_key_is_internal():
    with pytest.raises(WorkerError) as raised:
        requested_entities(DOC, run_for(["A", "B"], [P1, P2], key="0" * 64))
    assert raised.value.error_class == ErrorClass.INTERNAL and "is not the key" in raised.value.message


def test_chains_without_msa_and_no_request_is_invalid_input():
    run = PrepareRun(record_id="r", input_file="r.yaml")
    with pytest.raises(WorkerError) as raised:
        requested_entities(DOC, run)
    assert raised.value.error_class == ErrorClass.INVALID_INPUT
    assert raised.value.message.startswith("protein chains A, D, B, C have no msa and the MSA server is off")


def test_staged_input_points_requested_entities_at_their_files_and_makes_paths_absolute():
    staged = with_msas(DOC, {P1: Path("/store/k/0.csv"), P2: Path("/store/k/1.csv")}, Path("/etc/boltz-run"))
    msas = {tuple([b["id"]] if isinstance(b["id"], str) else b["id"]): b.get("msa")
            for item in staged["sequences"] for b in item.values()}  # fmt: skip
    assert msas[("A",)] == msas[("D",)] == "/store/k/0.csv"
    assert msas[("B", "C")] == "/store/k/1.csv"
    assert msas[("E",)] == "empty" and msas[("F",)] == "/etc/boltz-run/inputs/f.a3m"
    assert staged["templates"][0]["cif"] == "/etc/boltz-run/inputs/t.cif"
    assert DOC["sequences"][0]["protein"].get("msa") is None  # the input itself is left alone


def test_prefixed_s3_credentials(monkeypatch):
    monkeypatch.setenv("MSA_STORE_AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("MSA_STORE_AWS_SECRET_ACCESS_KEY", "secret")
    assert prefixed_credentials("MSA_STORE_") == {"aws_access_key_id": "id", "aws_secret_access_key": "secret"}
    monkeypatch.setenv("MSA_STORE_AWS_SESSION_TOKEN", "token")
    assert prefixed_credentials("MSA_STORE_")["aws_session_token"] == "token"
    assert prefixed_credentials("") == {}  # boto3's own chain (AWS_*)
    monkeypatch.delenv("MSA_STORE_AWS_SECRET_ACCESS_KEY")
    assert prefixed_credentials("MSA_STORE_") == {}  # half a pair: boto3's own chain


def test_a_request_naming_one_sequence_twice_is_internal_and_says_why():
    doc = {"sequences": [{"protein": {"id": "A", "sequence": P1}}, {"protein": {"id": "B", "sequence": P1}}]}
    with pytest.raises(WorkerError) as raised:
        requested_entities(doc, run_for(["A", "B"], [P1, P1]))
    assert raised.value.error_class == ErrorClass.INTERNAL
    assert "asks again for the sequence of chains B: boltz makes the proteins of one sequence one entity" in (
        raised.value.message
    )
    assert [e.chains for e in requested_entities(doc, run_for(["A"], [P1]))] == [["A", "B"]]

"""BoltzScreen's worker commands against the real S3 server (SeaweedFS) and the fake boltz over a directory of
inputs: slices written and read back, a library fetched from S3 under its cap, a shard's table and files, failed
ligands' rows (boltz refused it, out of GPU memory, a featurizer failure, and boltz's affinity step failing on a
ligand without a structure), a killed shard re-run skipping what was done, ranking from S3 (ranked.csv and its typed
Parquet twin) with a top K that fits the termination message."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from boltz_contract import ExitCode, PredictOptions, ResultsTarget, S3Target
from boltz_contract.screen import LibraryFile, LigandRow, ScreenRankRun, ScreenShardRun
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader
from boltz_worker.results.results_store import open_results_store
from boltz_worker.screen_runs.library import library_path
from boltz_worker.screen_runs.slices import read_rejected, read_slice, slice_ligands, write_slices

PREFIX = "ns/screen/1"
TARGET = {"version": 1, "sequences": [
    {"protein": {"id": "A", "sequence": "MADQLTEEQIAEFKEAFSLF", "msa": "empty"}},
    {"ligand": {"id": "L", "smiles": "CCO"}},
], "properties": [{"affinity": {"binder": "L"}}]}  # fmt: skip


def target_of(bucket) -> ResultsTarget:
    return ResultsTarget(uri=f"s3://{bucket.name}/{PREFIX}", s3=S3Target(bucket=bucket.name, prefix=PREFIX,
                         endpoint_url=bucket.endpoint_url, region=bucket.region))  # fmt: skip


def ligands(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"L{i}", "smiles": "c1ccccc1" + "C" * i, "ccd": None} for i in range(start, start + n)]


def seed_slices(bucket, per_shard: int, n: int, rejected: list[LigandRow] = ()) -> ResultsTarget:
    target = target_of(bucket)
    write_slices(open_results_store(target), slice_ligands(ligands(n), per_shard), list(rejected))
    return target


def shard_run(target, cache, index=0, affinity=True) -> ScreenShardRun:
    return ScreenShardRun(target_file="target.yaml", ligand_chain="L", affinity=affinity, shard_index=index,
                          options=PredictOptions(use_msa_server=True), cache_dir=str(cache), results=target)  # fmt: skip


def run_shard(run_worker, run, doc=TARGET):
    return run_worker("screen-shard", run, files={"target.yaml": yaml.safe_dump(doc)})


def table(bucket, index=0) -> list[dict]:
    return list(csv.DictReader(io.StringIO(bucket.read(f"{PREFIX}/shards/{index}/ligands.csv").decode())))


def predicted(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [(x["step"], x["record"]) for x in map(json.loads, lines)]


@pytest.fixture
def predicted_file(fake_boltz, monkeypatch, tmp_path) -> Path:
    path = tmp_path / "predicted.jsonl"
    monkeypatch.setenv("FAKE_BOLTZ_PREDICTED", str(path))
    return path


# ---------------------------------------------------------------------------------------------- prepare's part


def test_slices_and_rejected_rows_round_trip_through_s3(s3_env, s3_bucket):
    rejected = [LigandRow(id="bad", smiles="C1CC", error="RDKit cannot parse the SMILES 'C1CC'")]
    target = seed_slices(s3_bucket, per_shard=4, n=10, rejected=rejected)
    assert s3_bucket.keys(f"{PREFIX}/library/") == [f"{PREFIX}/library/{n}" for n in ("0.json", "1.json", "2.json",
                                                                                      "rejected.json")]  # fmt: skip
    reader = StoreReader(target)
    assert [x.id for x in read_slice(reader, 2).ligands] == ["L8", "L9"]
    assert read_rejected(reader) == rejected


def test_a_library_in_s3_is_fetched_with_the_results_store_s_credentials_under_its_cap(s3_env, s3_bucket, tmp_path):
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="libs/lib.smi", Body=b"CCO ethanol\n" * 100)
    spec = dict(format="smi", s3_uri=f"s3://{s3_bucket.name}/libs/lib.smi", endpoint_url=s3_bucket.endpoint_url,
                region=s3_bucket.region)  # fmt: skip
    path = library_path(LibraryFile(**spec, max_bytes=1200), tmp_path, tmp_path / "work")
    assert path.read_bytes() == b"CCO ethanol\n" * 100
    with pytest.raises(Exception, match="is 1200 bytes; at most 1199 are allowed"):
        library_path(LibraryFile(**spec, max_bytes=1199), tmp_path, tmp_path / "other")
    assert not (tmp_path / "other" / "library.smi").exists()  # refused before it was fetched


# ---------------------------------------------------------------------------------------------- a shard


def test_a_shard_predicts_its_slice_in_one_boltz_run_and_uploads_rows_files_and_marker(
    s3_env, s3_bucket, model_cache, fake_boltz, predicted_file, run_worker
):
    target = seed_slices(s3_bucket, per_shard=3, n=5)
    outcome = run_shard(run_worker, shard_run(target, model_cache, index=1))
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert outcome.summary == {"ok": True, "results_uri": f"{target.uri}/shards/1", "shard_index": 1,
                               "ligands_done": 2, "ligands_failed": 0,
                               "duration_seconds": outcome.summary["duration_seconds"]}  # fmt: skip
    argv = json.loads(fake_boltz.read_text())["argv"]
    assert Path(argv[1]).name == "inputs" and "--use_msa_server" not in argv  # one directory; MSAs are files
    assert predicted(predicted_file) == [
        ("structure", "L3"),
        ("structure", "L4"),
        ("affinity", "L3"),
        ("affinity", "L4"),
    ]
    rows = table(s3_bucket, 1)
    assert [(r["id"], r["affinity_probability_binary"], r["structure"]) for r in rows] == [
        ("L3", "0.81", "shards/1/L3/L3_model_0.cif"), ("L4", "0.81", "shards/1/L4/L4_model_0.cif")]  # fmt: skip
    keys = s3_bucket.keys(f"{PREFIX}/shards/1/")
    assert f"{PREFIX}/shards/1/L3/affinity_L3.json" in keys and f"{PREFIX}/shards/1/L4/L4_model_0.cif" in keys
    assert json.loads(s3_bucket.read(f"{PREFIX}/shards/1/_COMPLETE"))["done"] == 2
    again = run_shard(run_worker, shard_run(target, model_cache, index=1))
    assert again.summary["already_complete"] is True and again.summary["ligands_done"] == 2
    assert len(predicted(predicted_file)) == 4  # boltz did not run again


def test_failed_ligands_get_rows_with_boltz_s_reason_and_the_shard_goes_on(
    s3_env, s3_bucket, model_cache, fake_boltz, predicted_file, run_worker, monkeypatch
):
    target = seed_slices(s3_bucket, per_shard=6, n=6)
    monkeypatch.setenv("FAKE_BOLTZ_RECORD_MODES", json.dumps(
        {"L1": "preprocess_fail", "L2": "oom", "L3": "featurizer_fail", "L4": "oom_affinity"}))  # fmt: skip
    outcome = run_shard(run_worker, shard_run(target, model_cache))
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    assert (outcome.summary["ligands_done"], outcome.summary["ligands_failed"]) == (2, 4)
    errors = {r["id"]: r["error"] for r in table(s3_bucket)}
    assert errors["L0"] == errors["L5"] == ""
    assert errors["L1"] == "boltz refused the input: Chain A has an invalid residue"
    assert errors["L2"] == "boltz ran out of GPU memory in the structure step and skipped it"
    assert errors["L3"] == "boltz skipped it: index 3 is out of bounds"
    assert errors["L4"] == "boltz ran out of GPU memory in the affinity step and skipped it"
    # boltz's affinity step failed on L2 and L3 (no pre_affinity file); the second run predicted affinity only
    assert predicted(predicted_file) == [("structure", "L0"), ("structure", "L4"), ("structure", "L5"),
                                         ("affinity", "L0"), ("affinity", "L5")]  # fmt: skip


def test_a_shard_where_every_ligand_runs_out_of_gpu_memory_is_gpu_out_of_memory(
    s3_env, s3_bucket, model_cache, fake_boltz, run_worker, monkeypatch
):
    target = seed_slices(s3_bucket, per_shard=3, n=3)
    monkeypatch.setenv("FAKE_BOLTZ_MODE", "oom")
    outcome = run_shard(run_worker, shard_run(target, model_cache, affinity=False),
                        doc={k: v for k, v in TARGET.items() if k != "properties"})  # fmt: skip
    assert outcome.exit_code == ExitCode.GPU_OUT_OF_MEMORY
    assert outcome.summary["error_class"] == "GPUOutOfMemory"
    assert len(table(s3_bucket)) == 3  # the rows say so too
    assert f"{PREFIX}/shards/0/_COMPLETE" not in s3_bucket.keys(PREFIX)


def test_a_shard_whose_target_lacks_an_msa_is_invalid_input_before_boltz_runs(
    s3_env, s3_bucket, model_cache, fake_boltz, run_worker
):
    target = seed_slices(s3_bucket, per_shard=2, n=2)
    doc = {
        **TARGET,
        "sequences": [{"protein": {"id": "A", "sequence": "MADQLTEEQIAEFKEAFSLF"}}, TARGET["sequences"][1]],
    }
    outcome = run_shard(run_worker, shard_run(target, model_cache), doc)
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    assert outcome.summary["message"].startswith("protein chains A of the target have no msa")
    assert not fake_boltz.exists()  # boltz never started


@pytest.mark.parametrize("affinity", [True, False])
def test_a_killed_shard_re_run_skips_the_ligands_done(
    affinity, s3_env, s3_bucket, model_cache, fake_boltz, predicted_file, run_worker, monkeypatch
):
    target = seed_slices(s3_bucket, per_shard=5, n=5)
    doc = TARGET if affinity else {k: v for k, v in TARGET.items() if k != "properties"}
    monkeypatch.setenv("FAKE_BOLTZ_KILL_AFTER", "2")
    killed = run_shard(run_worker, shard_run(target, model_cache, affinity=affinity), doc)
    assert killed.exit_code == ExitCode.MEMORY_LIMIT_EXCEEDED, killed.summary
    assert f"{PREFIX}/shards/0/L1/L1_model_0.cif" in s3_bucket.keys(PREFIX)  # uploaded before the error
    monkeypatch.delenv("FAKE_BOLTZ_KILL_AFTER")
    predicted_file.unlink()
    again = run_shard(run_worker, shard_run(target, model_cache, affinity=affinity), doc)
    assert again.exit_code == ExitCode.OK, again.summary
    assert again.summary["ligands_done"] == 5
    rerun = [("structure", f"L{i}") for i in range(2, 5)]
    if affinity:  # the structures of L0 and L1 came back from S3: only their affinity ran
        rerun += [("affinity", f"L{i}") for i in range(5)]
    assert predicted(predicted_file) == rerun
    assert [r["id"] for r in table(s3_bucket)] == [f"L{i}" for i in range(5)]


# ---------------------------------------------------------------------------------------------- rank


def test_rank_merges_shards_rejected_rows_and_an_incomplete_shard_into_one_ranked_table(
    s3_env, s3_bucket, model_cache, fake_boltz, run_worker, monkeypatch
):
    rejected = [LigandRow(id="bad", smiles="C1CC", error="RDKit cannot parse the SMILES 'C1CC'")]
    target = seed_slices(s3_bucket, per_shard=3, n=7, rejected=rejected)  # shards 0, 1 and 2 (L6)
    monkeypatch.setenv("FAKE_BOLTZ_AFFINITY", json.dumps({f"L{i}": [-i / 10, (i * 37 % 10) / 10] for i in range(7)}))
    for index in (0, 1):
        assert run_shard(run_worker, shard_run(target, model_cache, index=index)).exit_code == ExitCode.OK
    outcome = run_worker("screen-rank", ScreenRankRun(num_shards=3, top_k=3, results=target))
    assert outcome.exit_code == ExitCode.OK, outcome.summary
    ranked = list(csv.DictReader(io.StringIO(s3_bucket.read(f"{PREFIX}/ranked.csv").decode())))
    # probabilities: L0 0.0, L1 0.7, L2 0.4, L3 0.1, L4 0.8, L5 0.5 (L6: shard 2 never ran)
    assert [(r["rank"], r["id"]) for r in ranked] == [("1", "L4"), ("2", "L1"), ("3", "L5"), ("4", "L2"), ("5", "L3"),
                                                      ("6", "L0"), ("7", "L6"), ("7", "bad")]  # fmt: skip
    assert ranked[6]["error"] == "not predicted: shard 2 did not complete"
    # ranked.parquet beside it: the same rows and columns, typed, a failed ligand's figures null.
    parquet = pq.read_table(pa.BufferReader(s3_bucket.read(f"{PREFIX}/ranked.parquet")))
    assert parquet.column_names == list(ranked[0])
    assert {f.name: str(f.type) for f in parquet.schema} == {
        "rank": "int64", "id": "string", "smiles": "string", "ccd": "string", "affinity_pred_value": "double",
        "affinity_probability_binary": "double", "iptm": "double", "ligand_iptm": "double", "complex_plddt": "double",
        "confidence_score": "double", "structure": "string", "error": "string"}  # fmt: skip
    typed = parquet.to_pylist()
    assert [{k: "" if v is None else str(v) for k, v in x.items()} for x in typed] == ranked
    assert typed[0]["affinity_probability_binary"] == 0.8 and typed[0]["rank"] == 1
    assert [typed[i][c] for i in (6, 7) for c in ("affinity_pred_value", "iptm", "confidence_score", "structure")] == (
        [None] * 8)  # fmt: skip
    head = s3_bucket.client().head_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/ranked.parquet")
    assert head["ContentType"] == "application/vnd.apache.parquet"
    summary = outcome.summary
    assert (summary["ligands_total"], summary["ligands_done"], summary["ligands_failed"]) == (8, 6, 2)
    assert [(t["rank"], t["id"], t["affinity_probability_binary"]) for t in summary["top_ligands"]] == [
        (1, "L4", 0.8), (2, "L1", 0.7), (3, "L5", 0.5)]  # fmt: skip
    assert summary["results_uri"] == target.uri
    # The HTML report beside ranked.csv: the ranked ligands linked to their structures, the failed ones with why.
    assert summary["report"] == "report.html"
    page = s3_bucket.read(f"{PREFIX}/report.html").decode()
    assert f'<a href="{ranked[0]["structure"]}">L4</a>' in page and "Failed ligands (2)" in page
    assert "shard 2 did not complete" in page and 'id="distributions"' in page and 'id="scatter"' in page


def test_rank_of_a_large_screen_reports_a_top_k_within_the_termination_message(s3_env, s3_bucket, run_worker, tmp_path):
    target = target_of(s3_bucket)
    store = open_results_store(target)
    many = [{"id": f"ligand-{i:04d}", "smiles": "C" * 150 + "N" * (i % 5), "ccd": None} for i in range(300)]
    write_slices(store, slice_ligands(many, 300), [])
    from boltz_worker.screen_runs.table import rows_to_csv

    rows = [LigandRow(id=x["id"], smiles=x["smiles"], affinity_probability_binary=round(1 - i / 300, 4),
                      affinity_pred_value=0.0, confidence_score=0.5) for i, x in enumerate(many)]  # fmt: skip
    store.put_bytes("shards/0/ligands.csv", rows_to_csv(rows))
    store.put_bytes("shards/0/_COMPLETE", b"{}")
    outcome = run_worker("screen-rank", ScreenRankRun(num_shards=1, top_k=100, results=target))
    assert outcome.exit_code == ExitCode.OK
    text = (tmp_path / "termination-log").read_bytes()
    assert len(text) <= 4096
    top = outcome.summary["top_ligands"]
    assert 0 < len(top) < 100 and [t["id"] for t in top] == [f"ligand-{i:04d}" for i in range(len(top))]
    assert outcome.summary["ligands_total"] == 300

"""BoltzGen contract additions: design/filter runs, shard index and marker logic, the boltzgen bundle, and the
termination message with top designs kept under the kubelet's 4096 bytes."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from boltz_contract import (
    RUN_ADAPTER,
    TERMINATION_MESSAGE_LIMIT,
    DesignRun,
    ErrorClass,
    FilterRun,
    ResultsTarget,
    RunSummary,
    S3Target,
    TopDesign,
    WorkerError,
)
from boltz_worker.boltzgen_runs import design as design_module
from boltz_worker.boltzgen_runs.boltzgen_store import StoreReader, sub_target
from boltz_worker.boltzgen_runs.filter import top_designs
from boltz_worker.model_cache.model_catalog import BOLTZ2, BOLTZGEN, BUNDLES

LOCAL = ResultsTarget(uri="pvc://results/ns/camp/1", local_dir="/results/ns/camp/1")


def test_design_and_filter_runs_round_trip_through_the_adapter():
    run = DesignRun(spec_file="binder.yaml", num_designs=10, results=LOCAL)
    again = RUN_ADAPTER.validate_json(run.model_dump_json())
    assert isinstance(again, DesignRun) and again == run and again.shard_index is None
    filt = FilterRun(spec_file="binder.yaml", num_shards=4, budget=5, results=LOCAL)
    assert isinstance(RUN_ADAPTER.validate_json(filt.model_dump_json()), FilterRun)


def test_runs_reject_unknown_steps_protocols_and_fields():
    with pytest.raises(ValidationError):
        DesignRun(spec_file="s.yaml", num_designs=1, results=LOCAL, protocol="protein-everything")
    with pytest.raises(ValidationError):
        DesignRun.model_validate({"spec_file": "s.yaml", "num_designs": 1, "results": LOCAL.model_dump(),
                                  "options": {"steps": ["design", "filter"]}})  # fmt: skip
    with pytest.raises(ValidationError):
        DesignRun.model_validate({"spec_file": "s.yaml", "num_designs": 1, "results": LOCAL.model_dump(),
                                  "options": {"config": {"design": ["x=1"]}}})  # fmt: skip
    with pytest.raises(ValidationError):
        DesignRun(spec_file="s.yaml", num_designs=0, results=LOCAL)


def test_shard_index_from_the_run_or_the_indexed_job():
    run = DesignRun(spec_file="s.yaml", num_designs=1, results=LOCAL)
    assert design_module.shard_index(run, {"JOB_COMPLETION_INDEX": "7"}) == 7
    assert design_module.shard_index(run.model_copy(update={"shard_index": 2}), {"JOB_COMPLETION_INDEX": "7"}) == 2
    for bad in ({}, {"JOB_COMPLETION_INDEX": "x"}, {"JOB_COMPLETION_INDEX": "-1"}):
        with pytest.raises(WorkerError) as e:
            design_module.shard_index(run, bad)
        assert e.value.error_class is ErrorClass.INVALID_INPUT


def test_sub_targets():
    s3 = ResultsTarget(uri="s3://b/ns/camp/1", s3=S3Target(bucket="b", prefix="ns/camp/1", endpoint_url="http://x"))
    shard = sub_target(s3, "shards/3")
    assert shard.uri == "s3://b/ns/camp/1/shards/3" and shard.s3.prefix == "ns/camp/1/shards/3"
    assert shard.s3.endpoint_url == "http://x"
    assert sub_target(LOCAL, "shards/0").local_dir == "/results/ns/camp/1/shards/0"
    with pytest.raises(WorkerError):
        sub_target(LOCAL, "../other")


def test_a_shard_with_its_marker_does_no_work(tmp_path, monkeypatch):
    target = ResultsTarget(uri="pvc://r/c", local_dir=str(tmp_path / "results"))
    marker = tmp_path / "results" / "shards" / "4" / "_COMPLETE"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"designs": 9}))

    def boom(*_a, **_k):
        raise AssertionError("boltzgen must not run for a complete shard")

    monkeypatch.setattr(design_module, "run_boltzgen", boom)
    monkeypatch.setattr(design_module, "check_models", boom)
    run = DesignRun(spec_file="missing.yaml", num_designs=5, shard_index=4, results=target)
    summary = design_module.design(run, config_dir=tmp_path)
    assert summary.ok and summary.already_complete and summary.designs_completed == 9
    assert summary.results_uri == "pvc://r/c/shards/4" and summary.shard_index == 4


def test_local_reader_lists_and_ignores_temp_files(tmp_path):
    base = tmp_path / "r"
    (base / "shards/1/sub").mkdir(parents=True)
    (base / "shards/1/a.csv").write_text("x")
    (base / "shards/1/sub/b.cif").write_text("y")
    (base / "shards/1/.c.cif.abc.tmp").write_text("z")
    reader = StoreReader(ResultsTarget(uri="pvc://r", local_dir=str(base)))
    assert reader.list("shards/1") == ["a.csv", "sub/b.cif"]
    assert reader.list("shards/9") == []
    copied = reader.download("shards/1", tmp_path / "dl", exclude=("a.csv",))
    assert copied == ["sub/b.cif"] and (tmp_path / "dl/sub/b.cif").read_text() == "y"


def test_boltzgen_bundle_as_boltzgen_downloads_it():
    assert BOLTZGEN.files == (
        "boltzgen1_diverse.ckpt", "boltzgen1_adherence.ckpt", "boltzgen1_ifold.ckpt", "boltz2_conf_final.ckpt",
        "boltz2_aff.ckpt", "mols.zip",
    )  # fmt: skip
    hf = "https://huggingface.co"
    assert BOLTZGEN.hf_url(hf, "boltzgen1_ifold.ckpt") == f"{hf}/boltzgen/boltzgen-1/resolve/main/boltzgen1_ifold.ckpt"
    assert BOLTZGEN.hf_url(hf, "mols.zip") == f"{hf}/datasets/boltzgen/inference-data/resolve/main/mols.zip"
    assert BOLTZGEN.file_path("mols.zip") == "boltzgen/mols.zip"
    assert BUNDLES["boltzgen"] is BOLTZGEN and BUNDLES["boltz2"] is BOLTZ2


def test_boltzgen_cache_problems(tmp_path):
    assert len(BOLTZGEN.cache_problems(tmp_path)) == 6
    for name in BOLTZGEN.files:
        (tmp_path / name).write_bytes(b"x")
    assert BOLTZGEN.cache_problems(tmp_path) == []


def test_top_designs_follow_final_rank_and_pick_key_metrics():
    rows = [
        {"id": "b", "final_rank": "2", "designed_sequence": "MKV", "design_to_target_iptm": "0.7", "design_ptm": "0.8"},
        {"id": "a", "final_rank": "1", "designed_sequence": "MKW", "design_iptm": "0.9", "min_interaction_pae": "3"},
    ]
    top = top_designs(rows, 5)
    assert [t.id for t in top] == ["a", "b"] and top[0].rank == 1
    assert top[0].metrics == {"design_iptm": 0.9, "min_interaction_pae": 3.0}
    assert top[1].metrics == {"design_to_target_iptm": 0.7, "design_ptm": 0.8}
    assert top_designs(rows, 1)[0].id == "a"


def test_termination_message_trims_top_designs_to_fit():
    designs = [
        TopDesign(rank=i, id=f"shard-{i:05d}_binder_{i:04d}", sequence="M" * 200,
                  metrics={"design_to_target_iptm": 0.91, "design_ptm": 0.88, "min_design_to_target_pae": 2.5,
                           "filter_rmsd": 1.2, "quality_score": 0.99})
        for i in range(1, 40)
    ]  # fmt: skip
    summary = RunSummary(ok=True, results_uri="s3://b/" + "p" * 200, designs_completed=4000,
                         shards_merged=list(range(100)), designs_selected=39, top_designs=designs)  # fmt: skip
    text = summary.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    back = RunSummary.from_termination_message(text)
    assert 5 <= len(back.top_designs) < 39
    assert [d.rank for d in back.top_designs] == list(range(1, len(back.top_designs) + 1))  # best kept
    assert back.shards_merged == list(range(100)) and back.designs_selected == 39


def test_design_summary_is_compact():
    text = RunSummary(ok=True, results_uri="s3://b/c/shards/3", shard_index=3, designs_completed=25)
    assert json.loads(text.to_termination_message()) == {
        "ok": True, "results_uri": "s3://b/c/shards/3", "shard_index": 3, "designs_completed": 25
    }  # fmt: skip

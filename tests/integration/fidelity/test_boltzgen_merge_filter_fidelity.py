"""BoltzGen fidelity: the filter Job's `boltzgen merge` and `boltzgen run --steps filtering`, run by the real
boltzgen 0.3.2 on the CPU, over shard folders laid out as boltzgen's design step writes them.

The worker's own filter (`boltz-worker filter`, in-process: the store read, the selective download, the argv, the
failure classification, the uploads and the summary) runs with $BOLTZGEN_EXECUTABLE pointing at boltzgen_cpu.py in
the boltzgen venv: boltzgen's own CLI, with the one CUDA query of its pipeline set-up answered (0, 0). Merge and
filtering are CPU code in boltzgen; the design step's GPU work is what the generated shard folders stand in for
(boltzgen_side.py `shards`: boltzgen's file names, tables and columns, random metrics).

The spec is rendered by the operator, as the campaign's ConfigMap holds it (boltzgen configures and checks it again
before filtering); the molecules are the offline CCD ones (boltzgen_mols) zipped as mols.zip; the checkpoints are
placeholder files (filtering loads none; boltzgen checks only that each path exists).
"""

from __future__ import annotations

import json
import posixpath
import shlex
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from boltz_contract import (
    ENV_WORK_DIR,
    SHARD_COMPLETE_MARKER,
    BoltzGenModels,
    ErrorClass,
    ExitCode,
    FilterRun,
    ResultsTarget,
)
from boltz_operator.api.design_spec import DesignSpec
from boltz_operator.builders.campaign import SPEC_FILE
from boltz_operator.render.boltzgen_yaml import render_design_spec
from boltz_worker import cli
from boltz_worker.boltzgen_runs.boltzgen_command import ENV_EXECUTABLE, filter_failure, run_boltzgen
from support.fidelity import TARGET, relocate
from support.report import assert_clean, assert_plots_drawn, open_report

HERE = Path(__file__).resolve().parent
BOLTZGEN_CPU = HERE / "boltzgen_cpu.py"
SPEC = {
    "entities": [
        {"protein": {"ids": ["G"], "sequence": "12"}},
        {"file": {"configMapKeyRef": {"name": "targets", "key": "3ch4.cif"}, "include": [{"chain": {"id": "A"}}]}},
    ]
}
FOLDED = "intermediate_designs_inverse_folded"


@pytest.fixture(scope="module")
def mols_zip(boltzgen_mols, tmp_path_factory) -> Path:
    """mols.zip as the boltzgen bundle holds it: `<CODE>.pkl` at its root (data/mol.py load_molecules)."""
    path = tmp_path_factory.mktemp("boltzgen-mols") / "mols.zip"
    with zipfile.ZipFile(path, "w") as z:
        for pkl in sorted(boltzgen_mols.glob("*.pkl")):
            z.write(pkl, pkl.name)
    return path


@pytest.fixture
def models(tmp_path, mols_zip) -> BoltzGenModels:
    cache = tmp_path / "models"
    cache.mkdir()
    names = ("boltzgen1_diverse.ckpt", "boltzgen1_adherence.ckpt", "boltzgen1_ifold.ckpt", "boltz2_conf_final.ckpt",
             "boltz2_aff.ckpt")  # fmt: skip
    for name in names:
        (cache / name).write_bytes(b"placeholder: filtering loads no checkpoint")
    return BoltzGenModels(
        design_checkpoints=[str(cache / names[0]), str(cache / names[1])], inverse_fold_checkpoint=str(cache / names[2]),
        folding_checkpoint=str(cache / names[3]), affinity_checkpoint=str(cache / names[4]), moldir=str(mols_zip),
    )  # fmt: skip


@pytest.fixture
def real_boltzgen(boltzgen_python, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_EXECUTABLE, shlex.join([str(boltzgen_python), str(BOLTZGEN_CPU)]))
    monkeypatch.setenv(ENV_WORK_DIR, str(tmp_path / "work"))


def config_dir(tmp_path: Path) -> Path:
    """The filter pod's config volume: the spec the operator renders, the target where its `path:` points."""
    doc, refs = render_design_spec(DesignSpec.model_validate(SPEC))
    config = tmp_path / "config"
    inputs = config / "inputs"
    inputs.mkdir(parents=True)
    for directory in {posixpath.dirname(ref.path) for ref in refs}:
        doc = relocate(doc, directory, str(inputs))
    for ref in refs:
        shutil.copyfile(TARGET, inputs / ref.file_name)
    (config / SPEC_FILE).write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def store_shards(boltzgen_side, results: Path, **options) -> dict[int, list[str]]:
    """Shard folders under <results>/shards/<i>/, each marked complete as a design shard leaves it."""
    answer = boltzgen_side("shards", results / "shards", json.dumps({"shards": 2, "backbones": 3, **options}))
    for index in answer["ids"]:
        (results / "shards" / index / SHARD_COMPLETE_MARKER).write_text("{}\n")
    return {int(i): ids for i, ids in answer["ids"].items()}


def run_filter(tmp_path: Path, results: Path, models: BoltzGenModels, budget: int):
    config = config_dir(tmp_path)
    run = FilterRun(spec_file=SPEC_FILE, num_shards=2, budget=budget, models=models,
                    results=ResultsTarget(uri="pvc://results/ns/camp", local_dir=str(results)))  # fmt: skip
    (config / "run.json").write_text(run.model_dump_json())
    termination = tmp_path / "termination-log"
    code = cli.main(["filter", "--run", str(config / "run.json"), "--termination-log", str(termination)])
    return code, json.loads(termination.read_text())


def read_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_shards_of_two_inverse_folded_sequences_merge_and_rank(
    boltzgen_side, real_boltzgen, models, tmp_path, browser
):
    results = tmp_path / "results"
    ids = store_shards(boltzgen_side, results, sequences=2)
    assert ids[0][:2] == ["design-spec_0_0", "design-spec_0_1"]  # the inverse-folded ids of the issue
    code, summary = run_filter(tmp_path, results, models, budget=4)
    assert code == ExitCode.OK, summary

    expected = {f"shard-{s:05d}_{i}" for s, shard_ids in ids.items() for i in shard_ids}
    merged = read_rows(results / "final" / "merged" / "aggregate_metrics_analyze.csv")
    assert len(merged) == 12 and {r["id"] for r in merged} == expected  # every design, none collided
    final = results / "final" / "final_ranked_designs"
    ranked = read_rows(final / "all_designs_metrics.csv")
    assert {r["id"] for r in ranked} == expected and sorted(int(r["final_rank"]) for r in ranked) == list(range(1, 13))
    selected = read_rows(final / "final_designs_metrics_4.csv")
    assert len({r["id"] for r in selected}) == 4 and {r["id"] for r in selected} <= expected
    assert len(list((final / "final_4_designs").glob("rank*.cif"))) == 4  # refolded structures, copied by boltzgen
    assert summary["designs_completed"] == 12 and summary["designs_selected"] == 4
    assert summary["designs_duplicates_dropped"] == 0 and summary["shards_merged"] == [0, 1]
    assert [t["rank"] for t in summary["top_designs"]] == sorted(t["rank"] for t in summary["top_designs"])

    # The campaign's report, from boltzgen's own CSVs: each selected design linked to its refolded structure, the
    # metric plots drawn in Chromium (offline, from file://).
    assert summary["report"] == "report.html"
    page = results / "final" / "report.html"
    for cif in (final / "final_4_designs").glob("rank*.cif"):
        assert f'href="final_ranked_designs/final_4_designs/{cif.name}"' in page.read_text()
    open_report(browser, page)
    assert_plots_drawn(browser, "distributions")
    assert_clean(browser)


def test_repeated_sequences_are_dropped_by_boltzgen_and_counted(boltzgen_side, real_boltzgen, models, tmp_path):
    results = tmp_path / "results"
    store_shards(boltzgen_side, results, sequences=1, repeats=2)  # shard 1 repeats two sequences of shard 0
    code, summary = run_filter(tmp_path, results, models, budget=6)
    assert code == ExitCode.OK, summary
    assert summary["designs_completed"] == 6 and summary["designs_duplicates_dropped"] == 2
    assert summary["designs_selected"] == 4  # fewer than the budget: boltzgen kept the first of each sequence


def test_the_whole_shard_as_merge_input_fails_in_boltzgen_and_is_filter_failed(boltzgen_side, real_boltzgen, tmp_path):
    """What the filter did before: every file of each shard, intermediate_designs/ included. boltzgen's merge then
    looks there for the inverse-folded ids and exits 1; that is deterministic, so FilterFailed, not a retry."""
    results = tmp_path / "results"
    store_shards(boltzgen_side, results, sequences=2)
    sources = [results / "shards" / "0", results / "shards" / "1"]
    from boltz_worker.boltzgen_runs.boltzgen_command import boltzgen_executable, build_merge_argv

    work = tmp_path / "work"
    work.mkdir()
    result = run_boltzgen(build_merge_argv(boltzgen_executable(), sources, work / "merged"), cwd=work)
    assert result.returncode == 1
    error = filter_failure(result, "boltzgen merge")
    assert error.error_class == ErrorClass.FILTER_FAILED and error.exit_code == 16
    assert "FileNotFoundError: Required file missing during merge" in error.message
    assert "/intermediate_designs/design-spec_0_0.cif" in error.message

"""BoltzScreen's worker commands run for real: the worker in the project venv, boltz 2.2.1 (and RDKit) from the boltz
venv, on CPU, with the small random checkpoints from a read-only model cache (as test_fidelity_predict).

1. screen-prepare on the kinase (examples/prediction.yaml's, cut to EXAMPLE_RESIDUES) with the placeholder ligand and
   an inline library of 9 ligands, one an unparsable SMILES: boltz's processing checks the complex, the MSA comes
   from the loopback MSA server once and goes to the MSA store, the bad SMILES is a rejected row, one slice of 8;
2. screen-shard: ONE real `boltz predict` over the 8 ligands, the MSA read from the store as the operator renders it
   (a path on the store's volume): every ligand's confidence and affinity files read into the table, figure by figure;
3. screen-rank: the ranked table (the rejected ligand last) and the top K.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from test_fidelity_predict import read_only_mode, snapshot

from boltz_contract import ExitCode, PredictOptions, ResultsTarget
from boltz_contract.msa import MsaStoreTarget, msa_file, msa_request_of
from boltz_contract.screen import ScreenLigand, ScreenPrepareRun, ScreenRankRun, ScreenShardRun
from support.fidelity import example_spec
from support.msa_server import MsaServer, serving
from support.report import assert_clean, assert_plots_drawn, open_report
from support.screen_worker import CPU_PREDICT_OPTIONS, run_worker_process

LIBRARY = {"ethanol": "CCO", "phenol": "c1ccccc1O", "acetic-acid": "CC(=O)O", "ethylamine": "CCN",
           "pyridine": "c1ccncc1", "glycerol": "OCC(O)CO", "isopropanol": "CC(C)O", "benzoic-acid": "OC(=O)c1ccccc1",
           "unclosed-ring": "C1CC"}  # fmt: skip
KINASE = example_spec()["sequences"][0]["protein"]["sequence"]


def target_doc(msa: str | None) -> dict:
    protein = {"id": "A", "sequence": KINASE} | ({"msa": msa} if msa else {})
    return {"version": 1, "sequences": [{"protein": protein}, {"ligand": {"id": "L", "smiles": "CCO"}}],
            "properties": [{"affinity": {"binder": "L"}}]}  # fmt: skip


@pytest.fixture(scope="module")
def screen(boltz_python, model_cache, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("screen")
    results = ResultsTarget(uri="pvc://results/default/kinase-screen", local_dir=str(root / "results"))
    store = MsaStoreTarget(uri="pvc://msas/screens", local_dir=str(root / "msa-store"))
    with serving(MsaServer()) as server:
        options = PredictOptions(use_msa_server=True, msa_server_url=server.url)
        doc = target_doc(None)
        request = msa_request_of(doc, options.msa_server_url, options.msa_pairing_strategy)
        prepare = ScreenPrepareRun(
            target_file="target.yaml", ligand_chain="L", options=options, cache_dir=str(model_cache),
            library_inline=[ScreenLigand(id=k, smiles=v) for k, v in LIBRARY.items()], ligands_per_shard=8,
            msa_request=request, msa_store=store, msa_server_backoff_seconds=0.05, results=results,
        )  # fmt: skip
        prepared = run_worker_process("screen-prepare", prepare, {"target.yaml": yaml.safe_dump(doc)},
                                      root / "prepare", boltz_python)  # fmt: skip
        submissions = server.total_submissions
    assert request is not None
    msa = Path(store.local_dir) / request.key / msa_file(0)  # the store's file, as the GPU step's input names it
    shard_run = ScreenShardRun(target_file="target.yaml", ligand_chain="L", options=CPU_PREDICT_OPTIONS,
                               shard_index=0, cache_dir=str(model_cache), results=results)  # fmt: skip
    mode = read_only_mode(root)
    wrap = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
            str(model_cache)] if mode == "mount" else None  # fmt: skip
    before = snapshot(model_cache)
    shard = run_worker_process("screen-shard", shard_run, {"target.yaml": yaml.safe_dump(target_doc(str(msa)))},
                               root / "shard", boltz_python, wrap=wrap)  # fmt: skip
    cache_unchanged = snapshot(model_cache) == before
    ranked = run_worker_process("screen-rank", ScreenRankRun(num_shards=1, top_k=3, results=results), {},
                                root / "rank", boltz_python)  # fmt: skip
    print(f"\nscreen on CPU: prepare {prepared.seconds:.1f} s, shard of 8 ligands {shard.seconds:.1f} s "
          f"(read-only cache: {mode}), rank {ranked.seconds:.1f} s")  # fmt: skip
    return {"prepare": prepared, "shard": shard, "rank": ranked, "results": Path(results.local_dir),
            "submissions": submissions, "cache_unchanged": cache_unchanged}  # fmt: skip


def test_prepare_checks_the_kinase_with_boltz_fetches_its_msa_once_and_rejects_the_bad_smiles(screen):
    run = screen["prepare"]
    assert run.code == ExitCode.OK, run.output[-6000:]
    summary = run.summary
    assert (summary.ligands_total, summary.ligands_failed, summary.shards) == (9, 1, 1)
    assert [(m.chain, m.source) for m in summary.msas] == [("A", "fetched")]
    assert summary.msa_server_calls == 1 and screen["submissions"] == 1
    library = screen["results"] / "library"
    assert [x["id"] for x in json.loads((library / "0.json").read_text())["ligands"]] == list(LIBRARY)[:8]
    (rejected,) = json.loads((library / "rejected.json").read_text())
    assert rejected["id"] == "unclosed-ring"
    assert rejected["error"].startswith("RDKit cannot parse the SMILES 'C1CC'")


def test_one_real_boltz_run_predicts_the_shard_and_every_ligand_s_files_are_read_into_the_table(screen):
    run = screen["shard"]
    assert run.code == ExitCode.OK, run.output[-8000:]
    assert (run.summary.ligands_done, run.summary.ligands_failed) == (8, 0)
    assert run.output.count("Running structure prediction for 8 inputs.") == 1  # one boltz, one model load
    assert screen["cache_unchanged"], "the model cache changed during the run"
    shard = screen["results"] / "shards" / "0"
    rows = list(csv.DictReader(io.StringIO((shard / "ligands.csv").read_text())))
    assert [r["id"] for r in rows] == list(LIBRARY)[:8]
    for row in rows:
        ligand = shard / row["id"]
        confidence = json.loads((ligand / f"confidence_{row['id']}_model_0.json").read_text())
        affinity = json.loads((ligand / f"affinity_{row['id']}.json").read_text())
        assert row["smiles"] == LIBRARY[row["id"]] and row["error"] == ""
        for name in ("confidence_score", "iptm", "ligand_iptm", "complex_plddt"):
            assert float(row[name]) == pytest.approx(confidence[name]), (row["id"], name)
        for name in ("affinity_pred_value", "affinity_probability_binary"):
            assert float(row[name]) == pytest.approx(affinity[name]), (row["id"], name)
        assert (screen["results"] / row["structure"]).is_file()
    assert json.loads((shard / "_COMPLETE").read_text())["done"] == 8


def test_rank_orders_the_screen_by_boltz_s_binding_probability_the_rejected_ligand_last(screen):
    run = screen["rank"]
    assert run.code == ExitCode.OK, run.output[-4000:]
    rows = list(csv.DictReader(io.StringIO((screen["results"] / "ranked.csv").read_text())))
    assert len(rows) == 9 and rows[-1]["id"] == "unclosed-ring" and rows[-1]["rank"] == "9"
    probabilities = [float(r["affinity_probability_binary"]) for r in rows[:-1]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert [t.id for t in run.summary.top_ligands] == [r["id"] for r in rows[:3]]
    assert (run.summary.ligands_total, run.summary.ligands_done, run.summary.ligands_failed) == (9, 8, 1)


def test_a_ligand_real_boltz_refuses_is_a_failed_row_and_a_structure_only_shard_goes_on(
    boltz_python, model_cache, tmp_path
):
    """A slice with a SMILES boltz cannot process (prepare would have refused it; here it reaches boltz): boltz prints
    "Failed to process ... Skipping" for it, the shard records why and predicts the other; no affinity asked."""
    from boltz_worker.results.results_store import open_results_store
    from boltz_worker.screen_runs.slices import slice_ligands, write_slices

    results = ResultsTarget(uri="pvc://results/default/structure-only", local_dir=str(tmp_path / "results"))
    ligands = [{"id": "phenol", "smiles": "c1ccccc1O", "ccd": None}, {"id": "broken", "smiles": "C1CC", "ccd": None}]
    write_slices(open_results_store(results), slice_ligands(ligands, 2), [])
    doc = {k: v for k, v in target_doc("empty").items() if k != "properties"}
    run = ScreenShardRun(target_file="target.yaml", ligand_chain="L", affinity=False, options=CPU_PREDICT_OPTIONS,
                         shard_index=0, cache_dir=str(model_cache), results=results)  # fmt: skip
    shard = run_worker_process("screen-shard", run, {"target.yaml": yaml.safe_dump(doc)}, tmp_path, boltz_python)
    print(f"\nstructure-only shard of 2 ligands, one refused: {shard.seconds:.1f} s")
    assert shard.code == ExitCode.OK, shard.output[-6000:]
    assert (shard.summary.ligands_done, shard.summary.ligands_failed) == (1, 1)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO((tmp_path / "results/shards/0/ligands.csv").read_text()))}
    assert rows["broken"]["error"].startswith("boltz refused the input: Python argument types in"), rows["broken"]
    assert "AddHs(NoneType)" in rows["broken"]["error"]  # RDKit's message, over several lines of boltz's output
    assert rows["phenol"]["error"] == "" and rows["phenol"]["affinity_probability_binary"] == ""
    confidence = json.loads((tmp_path / "results/shards/0/phenol/confidence_phenol_model_0.json").read_text())
    assert float(rows["phenol"]["ligand_iptm"]) == pytest.approx(confidence["ligand_iptm"])
    print(f"boltz's reason: {rows['broken']['error']}")


def test_the_screen_report_of_real_output_links_real_structures_and_opens_offline(screen, browser):
    """screen-rank's report over the real boltz shard: every structure it links is a file the shard uploaded (the
    links are relative to the results, where the report sits), and Chromium draws it with no network."""
    import re

    run = screen["rank"]
    assert run.summary.report == "report.html"
    page = screen["results"] / "report.html"
    links = re.findall(r'<a href="([^"]+)">', page.read_text())
    assert len(links) == 8 and all((screen["results"] / link).is_file() for link in links)
    open_report(browser, page)
    assert_plots_drawn(browser, "distributions", "scatter")
    assert_clean(browser)

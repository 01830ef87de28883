"""`kubectl boltz screen`: a boltz input (the target) and a library file -> one BoltzScreen (and the ConfigMap or
upload of its files), the refusals, and following a screen (status, the kind of a name, its results)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from boltz_kubectl import manifests
from boltz_kubectl.cli import main
from boltz_kubectl.commands import follow
from boltz_kubectl.errors import ExitCode, PluginError
from boltz_kubectl.fetch import LocalSource, fetch_screen
from boltz_kubectl.inputs.screen import convert_screen_target, count_entries, read_library
from boltz_kubectl.kube import Kube
from boltz_kubectl.manifests import ResultsOptions, build_screen
from boltz_operator.api.screen import BoltzScreenSpec, LibraryFormat

P1 = "MKTLLVAGAVALSACSQNDEKPVTEEHRALLEKAG"
SMI = "# kinase set\nCOc1ccccc1 anisole\nCCO ethanol\n\nc1ccncc1 pyridine\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def target(folder: Path, extra: str = "") -> Path:
    write(folder, "msa/a.a3m", f">101\n{P1}\n")
    head = f"version: 1\nsequences:\n  - protein: {{id: A, sequence: {P1}, msa: msa/a.a3m}}\n"
    return write(folder, "egfr.yaml", head + extra)


def screen(folder: Path, library_text: str = SMI, library_name: str = "lib.smi", **settings: Any):
    converted = convert_screen_target(target(folder), "L", affinity=True)
    library = read_library(write(folder, library_name, library_text), {f.key for f in converted.files})
    return build_screen(converted, library, "egfr", "ns", settings, results=settings.pop("results", None))


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(PluginError) as raised:
        call(*args, **kwargs)
    return str(raised.value)


def test_target_and_small_library_become_one_screen_owning_one_configmap(tmp_path):
    submission = screen(tmp_path)
    spec = BoltzScreenSpec.model_validate(submission.resource["spec"])
    assert [e.entity.ids for e in spec.target.sequences] == [["A"]]  # no placeholder ligand left in the target
    assert submission.resource["spec"]["library"] == {
        "format": "smi",
        "configMapKeyRef": {"name": "egfr-inputs", "key": "lib.smi"},
    }
    assert submission.configmap["data"] == {"a.a3m": f">101\n{P1}\n", "lib.smi": SMI}
    assert spec.target.sequences[0].protein.msa.config_map_key_ref.key == "a.a3m"


def test_a_pocket_may_name_the_screened_chain_and_fasta_targets_work(tmp_path):
    path = target(tmp_path, "constraints: [{pocket: {binder: L, contacts: [[A, 12]], max_distance: 7.5}}]\n")
    converted = convert_screen_target(path, "L", affinity=True)
    assert converted.spec["constraints"] == [
        {"pocket": {"binder": "L", "contacts": [{"chain": "A", "residue": 12}], "maxDistance": 7.5}}
    ]
    fasta = write(tmp_path, "t.fasta", f">A|protein|empty\n{P1}\n>C|ccd\nSAH\n")
    assert [list(e) for e in convert_screen_target(fasta, "L", affinity=False).spec["sequences"]] == [
        ["protein"],
        ["ligand"],
    ]


@pytest.mark.parametrize(
    "extra, chain, message",
    [
        (
            "  - ligand: {id: L, smiles: CCO}\n",
            "L",
            "sequences[1].ligand: the target already has a ligand with chain id L",
        ),
        ("  - protein: {id: L, sequence: MKV}\n", "L", "sequences[1].protein: the target already has a protein chain"),
        ("properties: [{affinity: {binder: C}}]\n", "L", "properties[0]: a screen"),
        ("  - protein: {id: A2, sequence: MKV, color: red}\n", "L", "unknown key 'color'"),
    ],
)
def test_targets_a_screen_cannot_take_are_refused(tmp_path, extra, chain, message):
    if extra.startswith("properties"):
        path = target(tmp_path, "  - ligand: {id: C, ccd: SAH}\n" + extra)
    else:
        path = target(tmp_path, extra)
    assert message in refusal(convert_screen_target, path, chain, True)


def test_an_affinity_property_with_no_affinity_is_refused_without_contradiction(tmp_path):
    path = target(tmp_path, "  - ligand: {id: C, ccd: SAH}\nproperties: [{affinity: {binder: L}}]\n")
    message = refusal(convert_screen_target, path, "L", False)
    assert (
        "a screen adds the affinity property itself (for the library ligand's chain L) unless --no-affinity" in message
    )
    assert "the target file must not carry one: remove `properties` from it" in message
    assert "cannot carry an affinity property of its own" not in message


def test_a_fixed_ethanol_is_not_merged_with_the_screened_ligands_stand_in(tmp_path):
    path = target(tmp_path, "  - ligand: {id: B, smiles: CCO}\n")
    sequences = convert_screen_target(path, "L", affinity=True).spec["sequences"]
    assert sequences[-1] == {"ligand": {"ids": ["B"], "smiles": "CCO"}}


def test_a_fixed_ligand_stays_when_the_screen_uses_another_chain(tmp_path):
    path = target(tmp_path, "  - ligand: {id: L, ccd: MG}\n")
    sequences = convert_screen_target(path, "X", affinity=True).spec["sequences"]
    assert sequences[-1] == {"ligand": {"ids": ["L"], "ccd": "MG"}}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("lib.txt", SMI, "unknown library format .txt"),
        ("lib.smi", "", "the library has no ligand"),
        ("lib.smi", "# only a comment\nsmiles id\n", "the library has no ligand"),
        ("lib.csv", "name,smiles\na,CCO\n", "lacks the column(s) ['id']"),
        ("lib.sdf", "\n", "the library has no ligand"),
        # the worker's own rules (boltz_contract.library_text), so prepare would refuse none of what passes here
        ("lib.smi", "CCO ethanol\nCCN ethanol\n", "1 ligand id(s) appear more than once: 'ethanol'"),
        ("lib.smi", "CCO ethanol\nCCN\n", "library line 2 has a SMILES but no id"),
        ("lib.smi", "CCO ../etc\n", "not file names boltz can use"),
        ("lib.csv", "id,smiles\n,CCO\n", "library line 2 has no id"),
    ],
)
def test_libraries_refused_before_anything_is_created(tmp_path, name, text, message):
    assert message in refusal(read_library, write(tmp_path, name, text), set())


def test_entries_are_counted_by_the_worker_rules_without_chemistry(tmp_path):
    assert count_entries(write(tmp_path, "a.smi", "SMILES ID\n" + SMI), LibraryFormat.SMI) == 3
    assert count_entries(write(tmp_path, "a.csv", 'id,smiles\na,CCO\n"b",CCN\n\n'), LibraryFormat.CSV) == 2
    sdf = "m1\n  RDKit\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\nm2\n\nM  END\n"
    assert count_entries(write(tmp_path, "a.sdf", sdf), LibraryFormat.SDF) == 2  # the last without $$$$
    (tmp_path / "latin1.sdf").write_bytes("caf\xe9\n\nM  END\n$$$$\n".encode("latin-1"))
    assert count_entries(tmp_path / "latin1.sdf", LibraryFormat.SDF) == 1  # RDKit's business, not the plugin's
    (tmp_path / "latin1.smi").write_bytes("CCO caf\xe9\n".encode("latin-1"))
    assert "not UTF-8 text" in refusal(count_entries, tmp_path / "latin1.smi", LibraryFormat.SMI)


def test_a_library_too_large_for_the_configmap_is_uploaded_or_refused_with_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests, "CONFIGMAP_TOTAL_LIMIT", 60)
    message = refusal(screen, tmp_path)
    assert "give --results s3://BUCKET/PREFIX" in message and "spec.library.s3.uri" in message
    submission = screen(tmp_path / "again", results=ResultsOptions("s3://bucket/runs"))
    assert submission.resource["spec"]["library"] == {
        "format": "smi",
        "s3": {"uri": "s3://bucket/runs/ns/egfr/inputs/lib.smi"},
    }
    assert [u.uri for u in submission.uploads] == ["s3://bucket/runs/ns/egfr/inputs/lib.smi"]
    assert set(submission.configmap["data"]) == {"a.a3m"}  # the target's small files still go to the ConfigMap


def test_screen_command_line(tmp_path, capsys):
    path = target(tmp_path)
    library = write(tmp_path, "lib.csv", "cid,smi\n" + "".join(f"m{i},CCO\n" for i in range(7)))
    code = main(["screen", str(path), str(library), "--name", "kin", "--shards", "3", "--top-k", "5",
                 "--parallelism", "2", "--no-affinity", "--ligand-chain", "Z", "--csv-id-column", "cid",
                 "--csv-smiles-column", "smi", "--diffusion-samples", "2", "--dry-run=client", "-o", "yaml"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    configmap, resource = yaml.safe_load_all(capsys.readouterr().out)
    assert configmap["metadata"]["name"] == "kin-inputs" and resource["kind"] == "BoltzScreen"
    spec = resource["spec"]
    assert spec["ligandsPerShard"] == 3  # 7 entries in 3 shards
    assert (spec["topK"], spec["parallelism"], spec["affinity"], spec["ligandChain"]) == (5, 2, False, "Z")
    assert spec["library"]["idColumn"] == "cid" and spec["library"]["smilesColumn"] == "smi"
    assert spec["options"] == {"diffusionSamples": 2}

    assert main(["screen", str(path), str(write(tmp_path, "l.smi", SMI)), "--csv-id-column", "x",
                 "--dry-run=client"]) == ExitCode.ERROR  # fmt: skip
    assert "--csv-id-column is for a .csv library" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["screen", str(path), str(library), "--shards", "2", "--ligands-per-shard", "4"])
    assert raised.value.code == ExitCode.USAGE


class FoundKube(Kube):
    """The real Kube's lookups over a dict of (kind, name) -> object; no Events."""

    def __init__(self, objects: dict[tuple[str, str], dict]):
        super().__init__(api=None, namespace="ns")
        self.objects = objects

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def events(self, obj: dict[str, Any]) -> list[Any]:
        return []


def obj(kind: str, name: str, status: dict | None = None) -> dict:
    return {"kind": kind, "metadata": {"name": name}, "status": status or {}}


def test_a_name_that_is_two_kinds_needs_kind():
    kube = FoundKube({("BoltzScreen", "egfr"): obj("BoltzScreen", "egfr"),
                      ("BoltzPrediction", "egfr"): obj("BoltzPrediction", "egfr")})  # fmt: skip
    message = refusal(kube.find, "egfr")
    assert "boltzprediction/egfr, boltzscreen/egfr" in message and "--kind prediction or --kind screen" in message
    assert kube.find("egfr", "BoltzScreen")["kind"] == "BoltzScreen"
    assert kube.find("egfr", "BoltzPrediction")["kind"] == "BoltzPrediction"


def test_status_of_a_screen_shows_progress_top_ligands_and_uris(capsys):
    base = "s3://bucket/screens/ns/egfr/uid"
    status = {
        "phase": "Succeeded",
        "progress": {"ligandsTotal": 9, "ligandsDone": 8, "ligandsFailed": 1, "shardsTotal": 3, "shardsSucceeded": 3},
        "results": {
            "uri": base, "table": f"{base}/ranked.csv", "parquet": f"{base}/ranked.parquet",
            "report": f"{base}/report.html",
            "topLigands": [{"rank": 1, "id": "osimertinib", "smiles": "C=CC", "affinityProbabilityBinary": 0.91},
                           {"rank": 2, "id": "erlotinib", "affinityProbabilityBinary": 0.88}],
        },
    }  # fmt: skip
    kube = FoundKube({("BoltzScreen", "egfr"): obj("BoltzScreen", "egfr", status)})
    assert follow.status(argparse.Namespace(name="egfr", kind=None, output=None), kube) == 0
    out = capsys.readouterr().out
    rows = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines() if ":" in line}
    assert rows["Progress"] == "ligands 8/9 done, 1 failed; shards 3/3 succeeded, 0 failed"
    assert rows["Top 1"] == "osimertinib  P(binder) 0.91  C=CC" and rows["Top 2"].startswith("erlotinib")
    assert rows["Table"] == f"{base}/ranked.csv" and rows["Report"] == f"{base}/report.html"
    assert rows["Parquet"] == f"{base}/ranked.parquet"


def test_screen_results_are_the_table_report_and_top_structures(tmp_path):
    store = tmp_path / "store"
    rows = {"osimertinib": "shards/0/osimertinib/osimertinib_model_0.cif", "ethanol": "shards/1/ethanol/e.cif"}
    for rel in rows.values():
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_text(f"data_{rel}\n")
    (store / "report.html").write_text("<html></html>")
    table = [f"{rank},{i},{rows.get(i, '')}" for rank, i in enumerate(("osimertinib", "ethanol", "bad"), start=1)]
    (store / "ranked.csv").write_text("\n".join(["rank,id,structure", *table]) + "\n")
    uri = "s3://b/screens/ns/egfr/uid"
    results = {"uri": uri, "report": f"{uri}/report.html", "topLigands": [{"rank": 1, "id": "osimertinib"}]}
    out = tmp_path / "out"
    written = fetch_screen(LocalSource(store, uri), out, results)
    assert {p.relative_to(out).as_posix() for p in written} == {"ranked.csv", "report.html", rows["osimertinib"]}
    everything = fetch_screen(LocalSource(store, uri), tmp_path / "all", results, everything=True)
    assert len(everything) == 4
    (store / "ranked.parquet").write_bytes(b"PAR1")  # a rank step that wrote it names it in status.results.parquet
    typed = fetch_screen(LocalSource(store, uri), tmp_path / "typed", {**results, "parquet": f"{uri}/ranked.parquet"})
    assert (tmp_path / "typed" / "ranked.parquet").read_bytes() == b"PAR1" and len(typed) == 4
    stale = {**results, "topLigands": [{"rank": 1, "id": "gone"}]}
    assert "lacks the top ligands ['gone']" in refusal(fetch_screen, LocalSource(store, uri), tmp_path / "x", stale)


def test_the_operator_builds_the_prepare_run_from_what_the_plugin_submits(tmp_path):
    from boltz_operator.builders.screen import library_file_ref, target_spec
    from boltz_operator.render import render_boltz_input

    spec = BoltzScreenSpec.model_validate(screen(tmp_path).resource["spec"])
    ref = library_file_ref(spec)
    assert (ref.name, ref.key, ref.path.rsplit("/", 1)[-1]) == ("egfr-inputs", "lib.smi", "library.smi")
    doc, _ = render_boltz_input(target_spec(spec))
    assert [next(iter(s.values()))["id"] for s in doc["sequences"]] == ["A", "L"]  # the placeholder joins as L
    assert doc["properties"] == [{"affinity": {"binder": "L"}}]


def test_a_directory_as_target_or_library_is_named_a_directory(tmp_path, capsys):
    path = target(tmp_path)
    library = write(tmp_path, "lib.smi", SMI)
    (tmp_path / "lib.dir.smi").mkdir()
    assert main(["screen", str(tmp_path), str(library), "--dry-run=client"]) == ExitCode.ERROR
    assert "is a directory; a screen takes one target file" in capsys.readouterr().err
    assert main(["screen", str(path), str(tmp_path / "lib.dir.smi"), "--dry-run=client"]) == ExitCode.ERROR
    assert "is a directory; a screen takes one library file" in capsys.readouterr().err


def test_the_shard_count_is_said_and_an_empty_ligand_chain_refused(tmp_path, capsys):
    path = target(tmp_path)
    library = write(tmp_path, "lib.smi", "".join(f"C{'C' * i}O l{i}\n" for i in range(9)))
    assert main(["screen", str(path), str(library), "--shards", "4", "--dry-run=client", "-o", "name"]) == 0
    assert "library: 9 ligands in 3 shards of up to 3" in capsys.readouterr().err  # ceil(9/4) = 3 per shard
    assert main(["screen", str(path), str(library), "--dry-run=client", "-o", "name"]) == 0
    assert "library: 9 ligands in 1 shard of up to 50" in capsys.readouterr().err
    assert main(["screen", str(path), str(library), "--ligand-chain", "", "--dry-run=client"]) == ExitCode.ERROR
    assert "--ligand-chain must not be empty" in capsys.readouterr().err


def test_a_flag_the_spec_refuses_does_not_blame_the_target_file(tmp_path, capsys):
    path, library = target(tmp_path), write(tmp_path, "lib.smi", SMI)
    assert main(["screen", str(path), str(library), "--top-k", "500", "--dry-run=client"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: the BoltzScreen would be refused") and "spec.topK" in err and str(path) not in err
    with pytest.raises(SystemExit):
        main(["screen", "--help"])
    assert "default smiles)" in " ".join(capsys.readouterr().out.split())

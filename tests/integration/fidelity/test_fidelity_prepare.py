"""`boltz-worker prepare` run for real: the worker in the project venv, boltz's parsing, input processing and MSA
client in the boltz 2.2.1 venv, a loopback ColabFold-API MSA server (support/msa_server.py), MSA stores on a
directory and on the real S3 server.

- every spec of test_fidelity_inputs (the operator's renderings) prepares, and reports where each chain's MSA came
  from; the wall time of each is printed (a figure, never asserted);
- the known bad inputs end as InvalidInput, on CPU, with a message naming what to fix;
- one protein prepared 20 times against one store calls the server once; two prepares of one key started together
  both call it (the operator serializes them) and leave one whole key; a rate-limited server is retried, then
  reported as MsaServerUnavailable.
"""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from test_fidelity_inputs import LIGAND_CCD, SPECS, TEMPLATE_CHAINS

from boltz_contract import ErrorClass, ExitCode, PredictOptions, PrepareRun, WorkerError
from boltz_contract.msa import MSA_COMPLETE_MARKER, MsaStoreS3, MsaStoreTarget, msa_request_of
from boltz_operator.api import BoltzPredictionSpec
from boltz_operator.render import predict_options, render_boltz_input, validate_prediction
from support.fidelity import a3m, write_msas
from support.msa_server import MsaServer, serving
from support.prepare_run import cache_with_mols, finish_prepare, run_prepare, start_prepare, write_config

P1 = "MKTAYIAKQRQISFVKSHFSRQ"
WALL_TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def cache(ensure_mols, tmp_path_factory) -> Path:
    return cache_with_mols(tmp_path_factory.mktemp("prepare-cache"), ensure_mols(*LIGAND_CCD))


@pytest.fixture(scope="module")
def msa_server():
    with serving(MsaServer()) as server:
        yield server


def local_store(root: Path) -> MsaStoreTarget:
    return MsaStoreTarget(uri="pvc://msas/test", local_dir=str(root / "msa-store"))


def protein_run(name: str, cache: Path, server_url: str, store: MsaStoreTarget, **fields) -> tuple[PrepareRun, dict]:
    """One protein without an MSA and a CCD ligand, as the operator renders and requests it."""
    doc = {"version": 1, "sequences": [{"protein": {"id": "A", "sequence": P1}}, {"ligand": {"id": "L", "ccd": "SAH"}}]}
    options = PredictOptions(use_msa_server=True, msa_server_url=server_url)
    request = msa_request_of(doc, options.msa_server_url, options.msa_pairing_strategy)
    run = PrepareRun(record_id=name, input_file=f"{name}.yaml", options=options, cache_dir=str(cache),
                     msa_request=request, msa_store=store, **fields)  # fmt: skip
    return run, doc


# ---------------------------------------------------------------------------------------------- every spec


@pytest.fixture(scope="module")
def spec_runs(boltz_side, boltz_python, cache, msa_server, tmp_path_factory) -> dict:
    """Each spec rendered by the operator's code, its files placed where the rendering names them (S3 ones too:
    the fetch is the S3 tests' business), prepared against a directory store and the loopback MSA server."""
    root = tmp_path_factory.mktemp("prepare-specs")
    templates, cases = {}, {}
    for name, body in SPECS.items():
        body = json.loads(json.dumps(body))
        if "msaServer" in body:
            body["msaServer"]["url"] = msa_server.url
        spec = BoltzPredictionSpec.model_validate(body)
        case = root / name
        inputs, downloads = case / "config" / "inputs", case / "downloads"
        assert validate_prediction(spec, inputs_dir=str(inputs), downloads_dir=str(downloads)) == []
        doc, _ = render_boltz_input(spec, str(inputs), str(downloads))
        write_msas(doc)
        for template in doc.get("templates", []):
            path = template.get("cif") or template.get("pdb")
            templates[path] = TEMPLATE_CHAINS[Path(path).stem]
        options = predict_options(spec)
        request = msa_request_of(doc, options.msa_server_url, options.msa_pairing_strategy)
        run = PrepareRun(record_id=name, input_file=f"{name}.yaml", options=options, cache_dir=str(cache),
                         msa_request=request, msa_store=local_store(root) if request else None,
                         msa_server_backoff_seconds=0.05)  # fmt: skip
        cases[name] = (case, run, doc)
    (root / "templates.json").write_text(json.dumps(templates))
    boltz_side("template", root / "templates.json")
    return {name: run_prepare(case, run, doc, boltz_python) for name, (case, run, doc) in cases.items()}


@pytest.mark.parametrize("name", SPECS)
def test_every_rendered_spec_prepares(name, spec_runs):
    outcome = spec_runs[name]
    WALL_TIMES[name] = outcome.seconds
    print(f"\nprepare {name}: {outcome.seconds:.1f} s wall, peak memory: boltz's process "
          f"{(outcome.peak_bytes or 0) / 2**20:.0f} MiB, the worker's {(outcome.worker_peak_bytes or 0) / 2**20:.0f} MiB")  # fmt: skip
    assert outcome.code == ExitCode.OK, outcome.output[-5000:]
    assert outcome.summary.ok


def test_each_chain_says_where_its_msa_came_from(spec_runs):
    sources = {name: {m.chain: m.source for m in spec_runs[name].summary.msas} for name in SPECS}
    assert sources["msa-files"] == {"A": "given", "B": "given", "C": "given", "D": "given", "E": "empty"}
    assert sources["example"] == {"A": "empty"}
    assert sources["msa-server"] == {"A": "fetched", "B": "fetched"}
    assert spec_runs["msa-server"].summary.msa_server_calls == 2  # one paired, one unpaired search for A and B
    assert all(spec_runs[name].summary.msa_server_calls == 0 for name in SPECS if name != "msa-server")


# ---------------------------------------------------------------------------------------------- bad inputs

PROTEIN = {"protein": {"id": "A", "sequence": "MCKTAYIAK", "msa": "empty"}}
BAD: dict[str, tuple[dict, dict[str, str], str]] = {  # name -> (input, files, message regex)
    "smiles-unparsable": (
        {"sequences": [PROTEIN, {"ligand": {"id": "L", "smiles": "[Xx]"}}]}, {},
        r"^ligand L: RDKit cannot parse the SMILES '\[Xx\]' .*\(boltz: ArgumentError: .*AddHs",
    ),
    "smiles-unsanitizable": (
        {"sequences": [PROTEIN, {"ligand": {"id": "L", "smiles": "N#N#N"}}]}, {},
        r"^ligand L: RDKit cannot sanitize the SMILES 'N#N#N': Explicit valence for atom # 1 N.*\(boltz: ArgumentError",
    ),
    "a3m-ending-in-nul": (
        {"sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "inputs/a.a3m"}}]},
        {"inputs/a.a3m": a3m(P1) + f">hit 3\n{P1[:-5]}NPIFD\n\0"},
        r"^chain A: the MSA file inputs/a.a3m has a NUL byte at line 9; .*remove the NUL bytes$",
    ),
    "msa-first-row-mismatch": (
        {"sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "inputs/a.a3m"}}]},
        {"inputs/a.a3m": a3m("MKTAYIAKQRQISFVKSHFSRW")},
        r"^chain A: the first row of the MSA file inputs/a.a3m \(line 2\) is not the chain's sequence \(1 of 22 "
        r"positions differ: 22: W for Q\); boltz would drop this MSA .*featurizerv2\.py construct_paired_msa",
    ),
    "bond-to-a-missing-ccd-atom": (
        {"sequences": [PROTEIN, {"ligand": {"id": "L", "ccd": "SAH"}}],
         "constraints": [{"bond": {"atom1": ["A", 2, "SG"], "atom2": ["L", 1, "XX"]}}]}, {},
        r"^constraints\[0\] \(bond\): chain L residue 1 \(SAH\) has no atom named 'XX'; boltz knows its atoms as N, "
        r"CA, .*SD.* \(boltz: KeyError: \('L', 0, 'XX'\) \[boltz/data/parse/schema\.py:\d+\]\)$",
    ),
    "unknown-ccd-code": (
        {"sequences": [PROTEIN, {"ligand": {"id": "L", "ccd": "ZZZ"}}]}, {},
        r"^CCD code ZZZ is not among the model cache's molecules .*\(boltz: ValueError: CCD component ZZZ not found!\)",
    ),
    "affinity-ccd-over-128-atoms-with-hydrogens": (  # chlorophyll a: 65 heavy atoms, 137 with hydrogens
        {"sequences": [PROTEIN, {"ligand": {"id": "L", "ccd": "CLA"}}], "properties": [{"affinity": {"binder": "L"}}]},
        {}, r"^affinity ligand L has more than 128 atoms as boltz counts them \(every atom of a CCD ligand, "
        r"hydrogens included.*\(boltz: ValueError: The ligand for affinity is too large",
    ),
    "unreadable-msa-row": (
        {"sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "inputs/a.a3m"}}]},
        {"inputs/a.a3m": a3m(P1) + f">hit 3\n{P1[:4]}*{P1[5:]}\n"},
        r"^chain A: the MSA file inputs/a.a3m has '\*' at line 8, column 5, which boltz cannot read",
    ),
}  # fmt: skip
BAD_CCD = ("CLA",)


@pytest.mark.parametrize("name", BAD)
def test_bad_inputs_are_invalid_input_with_an_actionable_message(name, boltz_python, cache, ensure_mols, tmp_path):
    ensure_mols(*BAD_CCD)  # the cache's mols/ is this directory
    doc, files, expected = BAD[name]
    for rel, text in files.items():
        (tmp_path / "config" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "config" / rel).write_text(text)
    run = PrepareRun(record_id=name, input_file=f"{name}.yaml", cache_dir=str(cache))
    outcome = run_prepare(tmp_path, run, {"version": 1, **doc}, boltz_python)
    print(f"\n{name}: {outcome.message}")
    assert outcome.code == ExitCode.INVALID_INPUT, outcome.output[-4000:]
    assert outcome.summary.error_class == ErrorClass.INVALID_INPUT
    assert re.search(expected, outcome.message), outcome.message


def test_a_template_chain_that_is_not_in_the_template_is_invalid_input(boltz_side, boltz_python, cache, tmp_path):
    template = tmp_path / "config" / "inputs" / "t.cif"
    (tmp_path / "templates.json").write_text(json.dumps({str(template): {"A": P1}}))
    boltz_side("template", tmp_path / "templates.json")
    doc = {"version": 1, "sequences": [{"protein": {"id": "A", "sequence": P1, "msa": "empty"}}],
           "templates": [{"cif": "inputs/t.cif", "chain_id": "A", "template_id": "Z"}]}  # fmt: skip
    outcome = run_prepare(tmp_path, PrepareRun(record_id="t", input_file="t.yaml", cache_dir=str(cache)), doc,
                          boltz_python)  # fmt: skip
    print(f"\ntemplate-chain: {outcome.message}")
    assert outcome.code == ExitCode.INVALID_INPUT, outcome.output[-4000:]
    assert re.search(r"^templates\[0\] \(t\.cif\): template_id Z is not a protein chain of the template file .*"
                     r"\(boltz: ValueError: Template chain Z assigned for templatet is not one of the protein chains",
                     outcome.message), outcome.message  # fmt: skip


# ---------------------------------------------------------------------------------------------- boltz's tolerance

# name -> (chain sequence, modifications, file name, MSA text): whether boltz keeps the MSA is asked of boltz's own
# featurizer (prepare_side.py); prepare must refuse exactly the ones boltz would drop.
FIRST_ROWS: dict[str, tuple[str, list, str, str]] = {
    "same": ("MKTAYIAK", [], "a.a3m", ">101\nMKTAYIAK\n>h\nMKTAYIAA\n"),
    "one-residue-differs": ("MKTAYIAK", [], "a.a3m", ">101\nMKTAYIAW\n>h\nMKTAYIAA\n"),
    "shorter": ("MKTAYIAK", [], "a.a3m", ">101\nMKTAYIA\n>h\nMKTAYIA\n"),
    "insertions-in-the-query": ("MKTAYIAK", [], "a.a3m", ">101\nMKTaaAYIAK\n>h\nMKTAYIAA\n"),
    "met-against-x": ("MKTAYIAK", [], "a.a3m", ">101\nXKTAYIAK\n>h\nMKTAYIAA\n"),
    "x-in-the-chain": ("XKTAYIAK", [], "a.a3m", ">101\nAKTAYIAK\n>h\nMKTAYIAA\n"),
    "modified-residue": ("MSTAYIAK", [{"position": 2, "ccd": "SEP"}], "a.a3m", ">101\nMATAYIAK\n>h\nMSTAYIAA\n"),
    "met-against-x-and-x-in-the-chain": ("MXTAYIAK", [], "a.a3m", ">101\nXATAYIAK\n>h\nMKTAYIAA\n"),
    "csv-differs": ("MKTAYIAK", [], "a.csv", "key,sequence\n1,MKTAYIAW\n2,MKTAYIAA\n"),
    "csv-same": ("MKTAYIAK", [], "a.csv", "key,sequence\n1,MKTAYIAK\n2,MKTAYIAA\n"),
}


def test_prepare_refuses_exactly_the_msas_boltz_would_silently_drop(boltz_python, ensure_mols, tmp_path):
    from boltz_worker.prepare.msa_files import check_msa_file

    cases = {}
    for name, (sequence, modifications, file_name, text) in FIRST_ROWS.items():
        msa = tmp_path / name / file_name
        msa.parent.mkdir()
        msa.write_text(text)
        body = {"id": "A", "sequence": sequence, "msa": str(msa), "modifications": modifications}
        (tmp_path / name / "in.yaml").write_text(json.dumps({"version": 1, "sequences": [{"protein": body}]}))
        cases[name] = str(tmp_path / name / "in.yaml")
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    proc = subprocess.run([str(boltz_python), str(Path(__file__).parent / "prepare_side.py"), "msa-kept",
                           str(ensure_mols(*LIGAND_CCD)), str(tmp_path / "cases.json")],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    boltz = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {}
    for name, (sequence, modifications, file_name, _) in FIRST_ROWS.items():
        try:
            check_msa_file(tmp_path / name / file_name, ["A"], sequence, modifications)
            ours[name] = True
        except WorkerError as e:
            assert e.error_class == ErrorClass.INVALID_INPUT
            ours[name] = False
    assert ours == {name: answer["kept"] for name, answer in boltz.items()}
    assert not boltz["one-residue-differs"]["kept"] and boltz["same"]["kept"]  # the premise: boltz drops silently
    print(f"\nboltz keeps: {sorted(n for n, a in boltz.items() if a['kept'])}")


# ---------------------------------------------------------------------------------------------- the MSA store


def test_twenty_prepares_of_one_protein_against_an_s3_store_call_the_server_once(
    boltz_python, cache, s3_bucket, tmp_path
):
    store = MsaStoreTarget(uri=f"s3://{s3_bucket.name}/msas", s3=MsaStoreS3(
        bucket=s3_bucket.name, prefix="msas", endpoint_url=s3_bucket.endpoint_url, region=s3_bucket.region))  # fmt: skip
    server_env = s3_bucket.server.env()
    # The store's credentials under MSA_STORE_*; the pod's own AWS_* (the results store's) do not open it.
    env = {f"MSA_STORE_{k}": v for k, v in server_env.items() if k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "results-only", "AWS_SECRET_ACCESS_KEY": "results-only",
            "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    with serving(MsaServer()) as server:
        outcomes = []
        for i in range(20):
            run, doc = protein_run(f"p{i}", cache, server.url, store)
            outcomes.append(run_prepare(tmp_path / str(i), run, doc, boltz_python, env))
            assert outcomes[-1].code == ExitCode.OK, outcomes[-1].output[-4000:]
        assert server.total_submissions == 1
        assert server.submissions == {P1: 1}
    assert [o.summary.msas[0].source for o in outcomes] == ["fetched"] + ["reused"] * 19
    assert [o.summary.msa_server_calls for o in outcomes] == [1] + [0] * 19
    key = run.msa_request.key
    assert s3_bucket.keys("msas/") == [f"msas/{key}/0.csv", f"msas/{key}/{MSA_COMPLETE_MARKER}"]
    print(f"\n20 prepares of one protein: 1 server call; wall {[round(o.seconds, 1) for o in outcomes]} s")


def test_a_directory_store_is_filled_once_and_read_in_place(boltz_python, cache, msa_server, tmp_path):
    store = local_store(tmp_path)
    before = msa_server.total_submissions
    outcomes = []
    for i in range(3):
        run, doc = protein_run(f"d{i}", cache, msa_server.url, store)
        outcomes.append(run_prepare(tmp_path / str(i), run, doc, boltz_python))
    assert [o.code for o in outcomes] == [0, 0, 0]
    assert msa_server.total_submissions - before == 1
    folder = Path(store.local_dir) / run.msa_request.key
    assert sorted(p.name for p in folder.iterdir()) == ["0.csv", MSA_COMPLETE_MARKER]
    assert folder.joinpath("0.csv").read_text().splitlines()[:2] == ["key,sequence", f"-1,{P1}"]
    assert sorted(p.name for p in Path(store.local_dir).iterdir()) == [run.msa_request.key]  # no temporary left


def test_two_prepares_of_one_key_at_once_both_call_the_server_and_leave_one_whole_key(boltz_python, cache, tmp_path):
    """What the operator's one-fetch-per-key gate prevents: without it, both miss and both submit."""
    store = local_store(tmp_path)
    with serving(MsaServer()) as server:
        started = []
        for i in range(2):
            run, doc = protein_run(f"c{i}", cache, server.url, store)
            run_json = write_config(tmp_path / str(i), run, doc)
            started.append((start_prepare(run_json, boltz_python), run_json, time.monotonic()))
        outcomes = [finish_prepare(*s) for s in started]
        assert [o.code for o in outcomes] == [0, 0]
        assert server.total_submissions == 2
    assert [o.summary.msas[0].source for o in outcomes] == ["fetched", "fetched"]
    assert sorted(p.name for p in Path(store.local_dir).iterdir()) == [run.msa_request.key]
    assert sorted(p.name for p in (Path(store.local_dir) / run.msa_request.key).iterdir()) == [
        "0.csv", MSA_COMPLETE_MARKER]  # fmt: skip


# ---------------------------------------------------------------------------------------------- rate limits


def test_a_rate_limited_server_is_retried_until_it_serves(boltz_python, cache, tmp_path):
    with serving(MsaServer(refuse_first=2, refusal="status")) as server:
        run, doc = protein_run("rl", cache, server.url, local_store(tmp_path), msa_server_backoff_seconds=0.05)
        outcome = run_prepare(tmp_path, run, doc, boltz_python)
        assert outcome.code == ExitCode.OK, outcome.output[-4000:]
        assert (server.total_submissions, server.refused) == (3, 2)
    assert outcome.summary.msa_server_calls == 3  # refused submissions count: the server counts them too
    assert outcome.output.count("status RATELIMIT; retry") == 2


@pytest.mark.parametrize("refusal, said", [("http", "HTTP 429 Too Many Requests"), ("status", "status RATELIMIT")])
def test_a_server_that_keeps_refusing_is_msa_server_unavailable(refusal, said, boltz_python, cache, tmp_path):
    with serving(MsaServer(refuse_first=None, refusal=refusal)) as server:
        run, doc = protein_run("rl", cache, server.url, local_store(tmp_path), msa_server_attempts=4,
                               msa_server_backoff_seconds=0.05)  # fmt: skip
        outcome = run_prepare(tmp_path, run, doc, boltz_python)
        assert server.total_submissions == 4  # bounded: boltz's own client resubmits forever
    assert outcome.code == ExitCode.MSA_SERVER_UNAVAILABLE, outcome.output[-4000:]
    assert outcome.summary.error_class == ErrorClass.MSA_SERVER_UNAVAILABLE
    assert outcome.message.startswith(f"the MSA server {server.url} refused 4 times in a row ({said}")
    assert "spec.msaServer.url" in outcome.message
    assert not (Path(run.msa_store.local_dir) / run.msa_request.key).exists()


def test_an_unreachable_server_is_msa_server_unavailable_without_boltzs_own_waits(boltz_python, cache, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    run, doc = protein_run("down", cache, url, local_store(tmp_path), msa_server_attempts=3,
                           msa_server_backoff_seconds=0.05)  # fmt: skip
    outcome = run_prepare(tmp_path, run, doc, boltz_python)
    assert outcome.code == ExitCode.MSA_SERVER_UNAVAILABLE, outcome.output[-4000:]
    assert outcome.message.startswith(
        f"the MSA server {url} failed 3 times in a row (cannot connect: ConnectionError): is it up, and reachable"
    )
    assert outcome.summary.error_class == ErrorClass.MSA_SERVER_UNAVAILABLE
    assert "Retrying... (1/5)" not in outcome.output  # boltz's own 5 x 5 s loop never ran


@pytest.mark.parametrize("residues, rows", [(300, 100), (3000, 8192)])
def test_prepare_memory_and_time_with_a_large_msa(residues, rows, boltz_python, cache, tmp_path):
    """Figures for sizing the prepare Job (chart value prepare.memory): boltz's process and the worker's peak
    memory with a given MSA of `rows` rows (boltz reads at most 8192) of a `residues`-long chain. Printed, not
    asserted: they depend on the machine."""
    rng = random.Random(residues)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    sequence = "".join(rng.choice(letters) for _ in range(residues))
    lines = [f">101\n{sequence}"]
    for i in range(rows - 1):
        row = list(sequence)
        for _ in range(residues // 5):
            row[rng.randrange(residues)] = rng.choice(letters + "-")
        lines.append(f">UniRef100_{i}\n{''.join(row)}")
    (tmp_path / "config" / "inputs").mkdir(parents=True)
    (tmp_path / "config" / "inputs" / "a.a3m").write_text("\n".join(lines) + "\n")
    doc = {"version": 1, "sequences": [{"protein": {"id": "A", "sequence": sequence, "msa": "inputs/a.a3m"}},
                                       {"ligand": {"id": "L", "ccd": "SAH"}}]}  # fmt: skip
    outcome = run_prepare(tmp_path, PrepareRun(record_id="big", input_file="big.yaml", cache_dir=str(cache)), doc,
                          boltz_python)  # fmt: skip
    assert outcome.code == ExitCode.OK, outcome.output[-4000:]
    steps = re.search(r"prepare steps took (\{.*\}) s", outcome.output)
    print(f"\nprepare, {residues} residues, a {rows}-row MSA: {outcome.seconds:.1f} s wall (steps {steps.group(1)}), "
          f"peak memory: boltz's process {outcome.peak_bytes / 2**20:.0f} MiB, the worker's "
          f"{outcome.worker_peak_bytes / 2**20:.0f} MiB")  # fmt: skip

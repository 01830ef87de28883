"""What prepare runs where boltz is importable: `python -m boltz_worker.prepare.boltz_child REQUEST ANSWER`.

The worker (prepare.py) runs it as a child process with the python that has boltz ($BOLTZ_PYTHON, default its own):
boltz's imports (torch, RDKit) and its prints stay out of the worker, and the child's peak memory is measurable on
its own. REQUEST is JSON: {input, mol_dir, work_dir, max_msa_seqs, fetch: null | {sequences, msa_dir,
server_url, pairing_strategy, api_key_header, attempts, backoff_seconds}}. ANSWER gets {ok, error_class?, message?,
msa_server_calls, msa_server_retries, fetched: [paths], seconds: {...}}.

The steps are those `boltz predict` runs before inference (boltz/main.py `process_inputs` -> `process_input`),
called one by one because process_input swallows exceptions ("Failed to process ... Skipping"):
1. `parse_yaml` on the staged input, with the molecules `load_canonicals(mol_dir)` gives (as with --cache);
   errors here end the run before any MSA server call;
2. `compute_msa` (which calls `run_mmseqs2`) for the requested sequences, with credentials as `boltz predict` takes
   them: $BOLTZ_MSA_USERNAME / $BOLTZ_MSA_PASSWORD, or $MSA_API_KEY_VALUE sent in the api_key_header header;
3. every MSA file parsed by `parse_a3m` / `parse_csv` and dumped where process_input looks for it;
4. `process_input` itself (templates, constraints, molecules, structure, record); success is its record file.
Standard library, requests and boltz only (this python may have no pydantic).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

from boltz_worker.prepare.boltz_errors import MESSAGE_LIMIT, boltz_text, explain_parse_error, msa_read_error
from boltz_worker.prepare.server_requests import BackoffPolicy, BoundedRequests, MsaServerRefused

INVALID_INPUT, MSA_SERVER_UNAVAILABLE = "InvalidInput", "MsaServerUnavailable"  # boltz_contract.ErrorClass values
DEFAULT_SERVER = "https://api.colabfold.com"  # boltz 2.2.1's --msa_server_url default
PROCESSED = ("msa", "processed_msa", "processed_constraints", "processed_templates", "processed_mols",
             "structures", "records")  # fmt: skip


class Failure(Exception):
    def __init__(self, error_class: str, message: str):
        super().__init__(message)
        self.error_class, self.message = error_class, message


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    answer: dict = {"ok": False, "msa_server_calls": 0, "msa_server_retries": 0, "fetched": [], "seconds": {}}
    with contextlib.redirect_stdout(sys.stderr):  # boltz and tqdm print; the answer goes to its own file
        try:
            prepare(request, answer)
            answer["ok"] = True
        except Failure as e:
            answer.update(error_class=e.error_class, message=e.message[: MESSAGE_LIMIT * 2])
    Path(argv[1]).write_text(json.dumps(answer))
    return 0


def prepare(request: dict, answer: dict) -> None:
    started = time.monotonic()
    import boltz.main  # noqa: F401 (first, as under `boltz predict`: the parser relies on modules it imports)
    import yaml
    from boltz.data.mol import load_canonicals

    answer["seconds"]["import"] = round(time.monotonic() - started, 2)
    path, mol_dir = Path(request["input"]), Path(request["mol_dir"])
    doc = yaml.safe_load(path.read_text())
    ccd = load_canonicals(str(mol_dir))
    step = time.monotonic()
    target = parse(path, doc, ccd, mol_dir)
    answer["seconds"]["parse"] = round(time.monotonic() - step, 2)
    if request.get("fetch"):
        step = time.monotonic()
        fetch(request["fetch"], answer)
        answer["seconds"]["msa_server"] = round(time.monotonic() - step, 2)
    step = time.monotonic()
    work = Path(request["work_dir"])
    dirs = {name: work / name for name in PROCESSED}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    read_msas(target, dirs["processed_msa"], request["max_msa_seqs"])
    process(path, ccd, mol_dir, dirs, request["max_msa_seqs"])
    answer["seconds"]["process"] = round(time.monotonic() - step, 2)


def parse(path: Path, doc: dict, ccd: dict, mol_dir: Path):
    from boltz.data.parse.schema import parse_boltz_schema
    from boltz.data.parse.yaml import parse_yaml

    def reparse(other: dict):
        return parse_boltz_schema(path.stem, other, dict(ccd), mol_dir, boltz_2=True)

    try:
        return parse_yaml(path, dict(ccd), mol_dir, boltz2=True)
    except Exception as e:  # noqa: BLE001 (boltz raises ValueError, KeyError, AssertionError, RDKit's errors...)
        raise Failure(INVALID_INPUT, explain_parse_error(e, doc, reparse)) from e


def fetch(spec: dict, answer: dict) -> None:
    """compute_msa for spec["sequences"], writing <msa_dir>/<i>.csv, through a BoundedRequests."""
    import boltz.data.msa.mmseqs2 as mmseqs2
    from boltz.main import compute_msa

    server = spec.get("server_url") or DEFAULT_SERVER
    client = BoundedRequests(BackoffPolicy(attempts=spec["attempts"], base_seconds=spec["backoff_seconds"]))
    mmseqs2.requests = client  # the module's `requests`: boltz's client calls requests.post/get on it
    api_key = os.environ.get("MSA_API_KEY_VALUE") or None
    msa_dir = Path(spec["msa_dir"])
    msa_dir.mkdir(parents=True, exist_ok=True)
    try:
        compute_msa(
            data={str(i): s for i, s in enumerate(spec["sequences"])}, target_id="prepare", msa_dir=msa_dir,
            msa_server_url=server, msa_pairing_strategy=spec["pairing_strategy"],
            msa_server_username=None if api_key else os.environ.get("BOLTZ_MSA_USERNAME"),
            msa_server_password=None if api_key else os.environ.get("BOLTZ_MSA_PASSWORD"),
            api_key_header=spec.get("api_key_header"), api_key_value=api_key,
        )  # fmt: skip
    except MsaServerRefused as e:
        raise Failure(MSA_SERVER_UNAVAILABLE, refused_message(server, e)) from e
    except Exception as e:  # noqa: BLE001 (boltz's client raises a bare Exception)
        raise Failure(MSA_SERVER_UNAVAILABLE, f"the MSA server {server} failed: {boltz_text(e)}") from e
    finally:
        answer["msa_server_calls"], answer["msa_server_retries"] = client.submissions, client.retries
    answer["fetched"] = [str(msa_dir / f"{i}.csv") for i in range(len(spec["sequences"]))]


def refused_message(server: str, e: MsaServerRefused) -> str:
    wait = f"; it asked to wait {e.retry_after:.0f} s" if e.retry_after is not None else ""
    if e.rate_limited:
        return (f"the MSA server {server} refused {e.attempts} times in a row ({e.refusal}{wait}): it rate-limits "
                "(the public ColabFold server by address); the prediction is retried later. If this persists, use a "
                "server of your own (spec.msaServer.url), give MSA files, or raise the attempts/backoff")  # fmt: skip
    return (f"the MSA server {server} failed {e.attempts} times in a row ({e.refusal}{wait}): is it up, and "
            "reachable from the cluster (DNS, egress, proxy)? The prediction is retried later")  # fmt: skip


def read_msas(target, processed_msa_dir: Path, max_seqs: int) -> None:
    """Each MSA file the record names, parsed by boltz and dumped under the name process_input gives it (it then
    reuses the dump): sorted msa ids, `<record id>_<index>.npz` (boltz/main.py process_input)."""
    from boltz.data.parse.a3m import parse_a3m
    from boltz.data.parse.csv import parse_csv

    chains = target.record.chains
    for index, msa_id in enumerate(sorted({c.msa_id for c in chains if c.msa_id != -1})):
        path = Path(msa_id)
        names = [c.chain_name for c in chains if c.msa_id == msa_id]
        if not path.is_file():
            raise Failure(INVALID_INPUT, f"chains {', '.join(names)}: the MSA file {path} does not exist")
        try:
            msa = parse_a3m(path, taxonomy=None, max_seqs=max_seqs) if path.suffix == ".a3m" else \
                parse_csv(path, max_seqs=max_seqs)  # fmt: skip
        except Exception as e:  # noqa: BLE001
            raise Failure(INVALID_INPUT, msa_read_error(e, names, path)) from e
        msa.dump(processed_msa_dir / f"{target.record.id}_{index}.npz")


def process(path: Path, ccd: dict, mol_dir: Path, dirs: dict[str, Path], max_seqs: int) -> None:
    from boltz.main import process_input

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        process_input(
            path=path, ccd=dict(ccd), msa_dir=dirs["msa"], mol_dir=mol_dir, boltz2=True, use_msa_server=False,
            msa_server_url="", msa_pairing_strategy="greedy", msa_server_username=None, msa_server_password=None,
            api_key_header=None, api_key_value=None, max_msa_seqs=max_seqs,
            processed_msa_dir=dirs["processed_msa"], processed_constraints_dir=dirs["processed_constraints"],
            processed_templates_dir=dirs["processed_templates"], processed_mols_dir=dirs["processed_mols"],
            structure_dir=dirs["structures"], records_dir=dirs["records"],
        )  # fmt: skip
    sys.stderr.write(printed.getvalue())
    if not (dirs["records"] / f"{path.stem}.json").is_file():
        failed = [line for line in printed.getvalue().splitlines() if line.startswith("Failed to process")]
        said = failed[-1] if failed else (printed.getvalue().strip().splitlines() or ["(nothing printed)"])[-1]
        raise Failure(INVALID_INPUT, f"boltz could not process the input: {said}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""A stand-in for boltz 2.2.1's `boltz predict`, for tests on machines without a GPU or weights.

It accepts exactly boltz's options (an unknown or misspelt flag is an error, as with click), checks the cache the
way `download_boltz2` does (existence only, never writing into a complete cache), and writes boltz's output layout
with its real file names and JSON keys. What happens is chosen by $FAKE_BOLTZ_MODE:

  ok               structures, confidences, pLDDT/PAE/PDE, and affinity when the input asks for it; exit 0
  preprocess_fail  "Failed to process <path>. Skipping. Error: <$FAKE_BOLTZ_ERROR>." and nothing else; exit 0
  oom              CUDA OOM in the structure stage: "| WARNING: ran out of memory, skipping batch", no outputs,
                   exit 0 (with an affinity input the affinity stage then fails: FileNotFoundError, exit 1)
  oom_affinity     structures written, OOM in the affinity stage, no affinity_<id>.json; exit 0
  cuda_error       "RuntimeError: CUDA error: an illegal memory access was encountered"; exit 1
  no_output        prints as if fine but writes no files; exit 0
  hang             prints that prediction started, then waits for a signal (to test signal forwarding)

A directory of inputs (a screen's shard) runs as boltz runs one, with per-record modes: see _predict_directory.

$FAKE_BOLTZ_RECORD, when set, names a JSON file where the argv, cwd, pid and a few environment variables are
written.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import zipfile
from pathlib import Path

import yaml

MODES = ("ok", "preprocess_fail", "oom", "oom_affinity", "cuda_error", "no_output", "hang", "featurizer_fail")
RECORDED_ENV = ("MSA_API_KEY_VALUE", "BOLTZ_CACHE", "HF_HUB_OFFLINE", "PYTHONUNBUFFERED")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boltz", allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", allow_abbrev=False)
    p.add_argument("data")
    p.add_argument("--out_dir", default="./")
    p.add_argument("--cache", default=os.environ.get("BOLTZ_CACHE", "~/.boltz"))
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--accelerator", choices=["gpu", "cpu", "tpu"], default="gpu")
    p.add_argument("--recycling_steps", type=int, default=3)
    p.add_argument("--sampling_steps", type=int, default=200)
    p.add_argument("--diffusion_samples", type=int, default=1)
    p.add_argument("--max_parallel_samples", type=int, default=5)
    p.add_argument("--step_scale", type=float, default=None)
    p.add_argument("--write_full_pae", action="store_true")
    p.add_argument("--write_full_pde", action="store_true")
    p.add_argument("--output_format", choices=["pdb", "mmcif"], default="mmcif")
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--override", action="store_true")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--use_msa_server", action="store_true")
    p.add_argument("--msa_server_url", type=str, default="https://api.colabfold.com")
    p.add_argument("--msa_pairing_strategy", type=str, default="greedy")
    p.add_argument("--msa_server_username", type=str, default=None)
    p.add_argument("--msa_server_password", type=str, default=None)
    p.add_argument("--api_key_header", type=str, default=None)
    p.add_argument("--api_key_value", type=str, default=None)
    p.add_argument("--use_potentials", action="store_true")
    p.add_argument("--model", choices=["boltz1", "boltz2"], default="boltz2")
    p.add_argument("--method", type=str, default=None)
    p.add_argument("--preprocessing-threads", type=int, default=1)
    p.add_argument("--affinity_mw_correction", action="store_true")
    p.add_argument("--sampling_steps_affinity", type=int, default=200)
    p.add_argument("--diffusion_samples_affinity", type=int, default=5)
    p.add_argument("--affinity_checkpoint", default=None)
    p.add_argument("--max_msa_seqs", type=int, default=8192)
    p.add_argument("--subsample_msa", action="store_true")
    p.add_argument("--num_subsampled_msa", type=int, default=1024)
    p.add_argument("--no_kernels", action="store_true")
    p.add_argument("--write_embeddings", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = os.environ.get("FAKE_BOLTZ_MODE", "ok")
    if mode not in MODES:
        print(f"fake boltz: unknown FAKE_BOLTZ_MODE {mode!r}", file=sys.stderr)
        return 2
    _record(argv if argv is not None else sys.argv[1:])
    data = Path(args.data)
    if not data.exists():  # click.Path(exists=True)
        print(f"Error: Invalid value for 'DATA': Path '{data}' does not exist.", file=sys.stderr)
        return 2
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out_dir).expanduser() / f"boltz_results_{data.stem}"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not _cache_complete(cache):
        return _fail_download(cache)

    print("Checking input data.")
    if data.is_dir():
        return _predict_directory(data, out_dir, args, mode)
    doc = yaml.safe_load(data.read_text())
    error = _preprocess_error(doc, args, mode)
    if error:
        print("Traceback (most recent call last):\n  ...\nRuntimeError: " + error)
        print(f"Failed to process {data}. Skipping. Error: {error}.")
        return 0  # like boltz: no records left, nothing predicted, success
    if mode == "cuda_error":
        print("Running structure prediction for 1 input.")
        print('Traceback (most recent call last):\n  File "boltz/main.py", line 1, in predict')
        print("RuntimeError: CUDA error: an illegal memory access was encountered")
        return 1

    record_id = data.stem
    predictions = out_dir / "predictions" / record_id
    binder = _affinity_binder(doc)
    print("Running structure prediction for 1 input.")
    if mode == "hang":
        while True:
            signal.pause()  # SIGTERM's default action ends the process
    print("Predicting DataLoader 0:   0%|          | 0/1\rPredicting DataLoader 0: 100%|##########| 1/1")
    if mode == "oom":
        print("| WARNING: ran out of memory, skipping batch")
        print("Number of failed examples: 1")
    elif mode == "no_output":
        print("Number of failed examples: 0")
    else:
        _write_structures(predictions, record_id, doc, args, affinity=binder is not None)
        print("Number of failed examples: 0")
    if binder is None or mode == "no_output":
        return 0
    return _affinity_stage(predictions, record_id, mode)


def _predict_directory(data: Path, out_dir: Path, args, mode: str) -> int:
    """A directory of inputs, as boltz 2.2.1 runs it (boltz/main.py predict): every input processed (a refused one
    skipped with "Failed to process"), the structure step for those without a predictions directory, then the
    affinity step for those without affinity_<id>.json, whose pre_affinity_<id>.npz is read outside any try (a
    missing one fails the step: FileNotFoundError, exit 1). $FAKE_BOLTZ_RECORD_MODES (JSON {record: mode}) sets a
    record's own mode: preprocess_fail, oom, oom_affinity, featurizer_fail. $FAKE_BOLTZ_KILL_AFTER=N: SIGKILL itself
    after writing N structures. $FAKE_BOLTZ_PREDICTED: a file where each step appends {step, record} lines."""
    modes = json.loads(os.environ.get("FAKE_BOLTZ_RECORD_MODES") or "{}")
    kill_after = int(os.environ.get("FAKE_BOLTZ_KILL_AFTER") or 0)
    inputs = sorted(p for p in data.iterdir() if p.suffix in (".yaml", ".yml"))
    docs = {}
    for path in inputs:
        doc = yaml.safe_load(path.read_text())
        error = _preprocess_error(doc, args, modes.get(path.stem, mode))
        if error:
            print("Traceback (most recent call last):\n  ...\nRuntimeError: " + error)
            print(f"Failed to process {path}. Skipping. Error: {error}.")
            continue
        docs[path.stem] = doc
    predictions = out_dir / "predictions"
    todo = [r for r in docs if not (predictions / r).is_dir()]
    written = 0
    if todo:
        print(f"Running structure prediction for {len(todo)} input{'s' if len(todo) > 1 else ''}.")
    for record in todo:
        record_mode = modes.get(record, mode)
        if record_mode == "oom":
            print("| WARNING: ran out of memory, skipping batch")
            continue
        if record_mode == "featurizer_fail":
            print(f"Featurizer failed on {record} with error index 3 is out of bounds. Skipping.")
            continue
        doc = docs[record]
        _write_structures(predictions / record, record, doc, args, affinity=_affinity_binder(doc) is not None)
        _predicted("structure", record)
        written += 1
        if kill_after and written >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    affinity = [r for r in docs if _affinity_binder(docs[r]) and not (predictions / r / f"affinity_{r}.json").exists()]
    if not affinity:
        return 0
    print("\nPredicting property: affinity\n")
    print(f"Running affinity prediction for {len(affinity)} input{'s' if len(affinity) > 1 else ''}.")
    for record in affinity:
        pre_affinity = predictions / record / f"pre_affinity_{record}.npz"
        if not pre_affinity.exists():
            print("Traceback (most recent call last):\n  ...")
            print(f"FileNotFoundError: [Errno 2] No such file or directory: '{pre_affinity}'")
            return 1
    for record in affinity:
        if modes.get(record, mode) == "oom_affinity":
            print("| WARNING: ran out of memory, skipping batch")
            continue
        _write_affinity(predictions / record, record)
        _predicted("affinity", record)
    return 0


def _predicted(step: str, record: str) -> None:
    path = os.environ.get("FAKE_BOLTZ_PREDICTED")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"step": step, "record": record}) + "\n")


def _record(argv: list[str]) -> None:
    path = os.environ.get("FAKE_BOLTZ_RECORD")
    if path:
        env = {name: os.environ.get(name) for name in RECORDED_ENV}
        Path(path).write_text(json.dumps({"argv": argv, "cwd": os.getcwd(), "pid": os.getpid(), "env": env}))


def _cache_complete(cache: Path) -> bool:
    """download_boltz2's test: all four paths exist."""
    return all((cache / name).exists() for name in ("mols.tar", "mols", "boltz2_conf.ckpt", "boltz2_aff.ckpt"))


def _fail_download(cache: Path) -> int:
    # What an offline pod sees when boltz tries to fill an incomplete cache.
    print(f"Downloading the CCD data to {cache / 'mols.tar'}. This may take a bit of time.")
    print("urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>")
    return 1


def _preprocess_error(doc: dict, args: argparse.Namespace, mode: str) -> str | None:
    if mode == "preprocess_fail":
        return os.environ.get("FAKE_BOLTZ_ERROR", "Chain A has an invalid residue")
    for item in doc.get("sequences", []):
        body = item.get("protein")
        if body is None:
            continue
        msa = body.get("msa")
        if msa in (None, "") and not args.use_msa_server:
            return "Missing MSA's in input and --use_msa_server flag not set."
        if msa not in (None, "", "empty") and not Path(msa).is_file():
            return f"[Errno 2] No such file or directory: '{msa}'"
    return None


def _affinity_binder(doc: dict) -> str | None:
    for prop in doc.get("properties") or []:
        if "affinity" in prop:
            return prop["affinity"]["binder"]
    return None


def _chain_ids(doc: dict) -> list[str]:
    ids: list[str] = []
    for item in doc.get("sequences", []):
        body = next(iter(item.values()))
        ids += [body["id"]] if isinstance(body["id"], str) else list(body["id"])
    return ids


def _write_structures(predictions: Path, record_id: str, doc: dict, args, affinity: bool) -> None:
    predictions.mkdir(parents=True, exist_ok=True)
    chains = _chain_ids(doc)
    suffix = "cif" if args.output_format == "mmcif" else "pdb"
    for rank in range(args.diffusion_samples):
        name = f"{record_id}_model_{rank}"
        (predictions / f"{name}.{suffix}").write_text(_structure_text(record_id, chains, suffix))
        confidence = _confidence(rank, len(chains))
        (predictions / f"confidence_{name}.json").write_text(json.dumps(confidence, indent=4))
        for kind in ("plddt", "pae", "pde"):
            _write_npz(predictions / f"{kind}_{name}.npz", kind, [0.5] * 8)
        if affinity and rank == 0:
            _write_npz(predictions / f"pre_affinity_{record_id}.npz", "coords", [0.0] * 8)


def _affinity_stage(predictions: Path, record_id: str, mode: str) -> int:
    print("\nPredicting property: affinity\n")
    pre_affinity = predictions / f"pre_affinity_{record_id}.npz"
    if not pre_affinity.exists():  # what boltz 2.2.1 does after a structure-stage OOM
        print("Traceback (most recent call last):\n  ...")
        print(f"FileNotFoundError: [Errno 2] No such file or directory: '{pre_affinity}'")
        return 1
    print("Running affinity prediction for 1 input.")
    if mode == "oom_affinity":
        print("| WARNING: ran out of memory, skipping batch")
        print("Number of failed examples: 1")
        return 0
    _write_affinity(predictions, record_id)
    print("Number of failed examples: 0")
    return 0


def _write_affinity(predictions: Path, record_id: str) -> None:
    """affinity_<id>.json; $FAKE_BOLTZ_AFFINITY (JSON {record: [value, probability]}) sets a record's figures."""
    value, probability = json.loads(os.environ.get("FAKE_BOLTZ_AFFINITY") or "{}").get(record_id, [-1.25, 0.81])
    affinity = {
        "affinity_pred_value": value,
        "affinity_probability_binary": probability,
        "affinity_pred_value1": value + 0.05,
        "affinity_probability_binary1": probability - 0.01,
        "affinity_pred_value2": value - 0.05,
        "affinity_probability_binary2": probability + 0.01,
    }
    (predictions / f"affinity_{record_id}.json").write_text(json.dumps(affinity, indent=4))


def _confidence(rank: int, n_chains: int) -> dict:
    """The keys BoltzWriter writes; scores fall with rank (model 0 is the best)."""
    score = round(0.9 - 0.05 * rank, 4)
    chains = [str(i) for i in range(n_chains)]
    return {
        "confidence_score": score,
        "ptm": score - 0.01,
        "iptm": score - 0.02,
        "ligand_iptm": score - 0.03,
        "protein_iptm": score - 0.04,
        "complex_plddt": score + 0.02,
        "complex_iplddt": score + 0.01,
        "complex_pde": 0.8,
        "complex_ipde": 1.1,
        "chains_ptm": {c: score for c in chains},
        "pair_chains_iptm": {c1: {c2: score for c2 in chains} for c1 in chains},
    }


def _structure_text(record_id: str, chains: list[str], suffix: str) -> str:
    if suffix == "pdb":
        return "".join(f"REMARK fake chain {c}\n" for c in chains) + "END\n"
    return f"data_{record_id}\n#\n_entry.id {record_id}\n#\n" + "".join(f"# chain {c}\n" for c in chains)


def _write_npz(path: Path, key: str, values: list[float]) -> None:
    """A real .npz (a zip of one .npy, float32), without needing numpy."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({len(values)},), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    data = struct.pack(f"<{len(values)}f", *values)
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", npy)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A stand-in for boltzgen 0.3.2's `boltzgen run` and `boltzgen merge`, for tests without a GPU or weights.

It accepts exactly boltzgen's options for these subcommands (parsers copied from cli/boltzgen.py; an unknown or
misspelt option is an error), resolves artifacts the way `get_artifact_path` does (a `huggingface:` reference needs
the hub, which fails under HF_HUB_OFFLINE=1; a path must exist), and writes boltzgen's output layout with its file
names and CSV columns:

  <out>/steps.yaml, <out>/config/<step>.yaml
  <out>/intermediate_designs/<spec stem>_<i>.cif, .npz                     (design)
  <out>/intermediate_designs_inverse_folded/<id>.cif, .npz                 (inverse_folding; with
      --inverse_fold_num_sequences k > 1: <id>_<n>.cif for n < k, zero-padded to the digits of k-1, new sequences)
      refold_cif/<id>.cif, fold_out_npz/<id>.npz                           (folding)
      refold_design_cif/<id>.cif, fold_out_design_npz/<id>.npz             (design_folding)
      aggregate_metrics_analyze.csv, per_target_metrics_analyze.csv,
      ca_coords_sequences.pkl.gz                                           (analysis)
  <out>/final_ranked_designs/ all_designs_metrics.csv, final_designs_metrics_<budget>.csv, results_overview.pdf,
      intermediate_ranked_10_designs/rank<k>_<file>, final_<budget>_designs/rank<k>_<file> (+ before_refolding/)
                                                                           (filtering)
`merge` renames ids to `<slug of the source dir>_<id>` and concatenates the CSVs, as boltzgen's merge does.

Stand-ins: structures are tiny mmCIF text; .npz and the pickle are not numpy/pandas files (the worker never opens
them). $FAKE_BOLTZGEN_MODE: ok | no_cuda | oom | no_output. $FAKE_BOLTZGEN_LOSE_DESIGNS=N: the analysis step
loses N designs as boltzgen's does when a pool worker is killed (prints POOL BROKEN for each, still exits 0). $FAKE_BOLTZGEN_RECORD: a file where one JSON line per
invocation records argv and a few environment variables. $FAKE_BOLTZGEN_SEQUENCE_LENGTH: designed length (12).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import pickle
import random
import re
import shutil
import sys
from pathlib import Path

STEP_NAMES = ["design", "inverse_folding", "design_folding", "folding", "affinity", "analysis", "filtering"]
PROTOCOLS = [
    "protein-anything", "peptide-anything", "protein-small_molecule", "nanobody-anything", "antibody-anything",
    "protein-redesign",
]  # fmt: skip
MODES = ("ok", "no_cuda", "oom", "no_output")
RECORDED_ENV = ("HF_HUB_OFFLINE", "PYTHONUNBUFFERED", "JOB_COMPLETION_INDEX")
AMINO = "ACDEFGHIKLMNPQRSTVWY"
METRIC_COLUMNS = [
    "id", "file_name", "designed_sequence", "designed_chain_sequence", "num_design", "design_to_target_iptm",
    "design_iptm", "design_ptm", "iptm", "ptm", "min_design_to_target_pae", "min_interaction_pae", "bb_rmsd",
    "bb_rmsd_design", "rmsd", "rmsd_design", "plip_hbonds_refolded", "plip_saltbridge_refolded",
    "delta_sasa_refolded", "design_hydrophobicity", "loop", "helix", "sheet",
]  # fmt: skip
FILTER_COLUMNS = [
    "id", "final_rank", "designed_sequence", "designed_chain_sequence", "num_design", "design_to_target_iptm",
    "min_design_to_target_pae", "design_ptm", "filter_rmsd", "plip_saltbridge_refolded", "plip_hbonds_refolded",
    "delta_sasa_refolded", "design_hydrophobicity", "loop", "helix", "sheet", "file_name", "design_iptm",
    "num_filters_passed", "pass_filters", "has_x", "max_rank", "secondary_rank", "quality_score",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------- parsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="boltzgen", allow_abbrev=False)
    parser.add_argument("-v", "--version", action="version", version="boltzgen 0.3.2")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", allow_abbrev=False)
    run.add_argument("design_spec", nargs="+", type=Path)
    p = run
    p.add_argument("--protocol", choices=PROTOCOLS, default="protein-anything")
    p.add_argument("--output", type=Path)
    p.add_argument("--config", nargs="+", action="append")
    p.add_argument("--devices", type=int)
    p.add_argument("--num_workers", type=int, default=1)
    p.add_argument("--config_dir", type=Path)
    p.add_argument("--use_kernels", choices=["auto", "true", "false"], default="auto")
    p.add_argument("--moldir", type=str, default="huggingface:boltzgen/inference-data:mols.zip")
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--num_designs", type=int, default=10000)
    p.add_argument("--diffusion_batch_size", type=int, default=None)
    p.add_argument(
        "--design_checkpoints", type=str, nargs="+",
        default=["huggingface:boltzgen/boltzgen-1:boltzgen1_diverse.ckpt",
                 "huggingface:boltzgen/boltzgen-1:boltzgen1_adherence.ckpt"],
    )  # fmt: skip
    p.add_argument("--step_scale", type=str, default=None)
    p.add_argument("--noise_scale", type=str, default=None)
    p.add_argument("--skip_inverse_folding", action="store_true")
    p.add_argument("--inverse_fold_num_sequences", type=int, default=1)
    p.add_argument(
        "--inverse_fold_checkpoint", type=str, default="huggingface:boltzgen/boltzgen-1:boltzgen1_ifold.ckpt"
    )
    p.add_argument("--inverse_fold_avoid", type=str, default=None)
    p.add_argument("--only_inverse_fold", action="store_true")
    p.add_argument("--folding_checkpoint", type=str, default="huggingface:boltzgen/boltzgen-1:boltz2_conf_final.ckpt")
    p.add_argument("--affinity_checkpoint", type=str, default="huggingface:boltzgen/boltzgen-1:boltz2_aff.ckpt")
    p.add_argument("--budget", type=int, default=30)
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--filter_biased", choices=["true", "false"], default="true")
    p.add_argument("--metrics_override", nargs="+", default=None)
    p.add_argument("--additional_filters", nargs="+", default=None)
    p.add_argument("--size_buckets", nargs="+", default=None)
    p.add_argument("--refolding_rmsd_threshold", type=float, default=None)
    p.add_argument("--no_subprocess", dest="subprocess", action="store_false", default=True)
    p.add_argument("--steps", nargs="+", choices=STEP_NAMES)
    p.add_argument("--force_download", action="store_true", default=False)
    p.add_argument("--models_token", type=str, default=os.environ.get("HF_TOKEN"))
    p.add_argument("--cache", type=Path, default=None)
    merge = sub.add_parser("merge", allow_abbrev=False)
    merge.add_argument("sources", nargs="+", type=Path)
    merge.add_argument("--output", type=Path, required=True)
    merge.add_argument("--overwrite", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _record(argv)
    mode = os.environ.get("FAKE_BOLTZGEN_MODE", "ok")
    if mode not in MODES:
        print(f"fake boltzgen: unknown FAKE_BOLTZGEN_MODE {mode!r}", file=sys.stderr)
        return 2
    if args.command == "merge":
        return merge_command(args)
    return run_command(args, mode)


def _record(argv: list[str]) -> None:
    path = os.environ.get("FAKE_BOLTZGEN_RECORD")
    if path:
        entry = {"argv": argv, "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in RECORDED_ENV}}
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


# ---------------------------------------------------------------------------------------------- run


def artifact_path(artifact: str) -> Path:
    """cli/boltzgen.py get_artifact_path: a huggingface: reference is downloaded, a path must exist."""
    if artifact.startswith("huggingface:"):
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise RuntimeError(
                "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache "
                "and outgoing traffic has been disabled. To enable hf.co look-ups and downloads online, set "
                "'HF_HUB_OFFLINE=0' as environment variable."
            )
        raise RuntimeError("fake boltzgen: would download " + artifact)
    path = Path(artifact)
    if not path.exists():
        raise FileNotFoundError(f"Model not found: {path}")
    return path


def run_command(args, mode: str) -> int:
    if not args.output:
        print("No output directory specified. Exiting.")
        return 0
    print("\n=== Configuring pipeline ===")
    try:
        artifact_path(args.moldir)
        for spec in args.design_spec:
            if not spec.is_file():
                raise FileNotFoundError(f"[Errno 2] No such file or directory: '{spec}'")
        if mode == "no_cuda":  # BinderDesignPipeline.__init__: torch.cuda.get_device_capability()
            raise RuntimeError("Found no NVIDIA driver on your system.")
        for checkpoint in [*args.design_checkpoints, args.inverse_fold_checkpoint, args.folding_checkpoint]:
            artifact_path(checkpoint)
        if args.protocol == "protein-small_molecule":
            artifact_path(args.affinity_checkpoint)
    except (RuntimeError, FileNotFoundError) as e:
        print('Traceback (most recent call last):\n  File "boltzgen/cli/boltzgen.py", line 1, in main')
        print(f"{type(e).__name__}: {e}")
        return 1
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    steps = pipeline_steps(args)
    (out / "config").mkdir(exist_ok=True)
    for step in steps:
        (out / "config" / f"{step}.yaml").write_text(f"_target_: fake.{step}\noutput: {out}\n")
    (out / "steps.yaml").write_text(
        "steps:\n" + "".join(f"- name: {s}\n  config_file: config/{s}.yaml\n" for s in steps)
    )
    print("\n=== Executing pipeline ===")
    if mode == "no_output":
        return 0
    spec_stem = args.design_spec[0].stem
    inverse = not args.skip_inverse_folding
    designs = out / "intermediate_designs"
    folded = out / "intermediate_designs_inverse_folded" if inverse else designs
    for index, step in enumerate(steps, start=1):
        print("**************************************************")
        print(f"Pipeline step {index} of {len(steps)}: {step}")
        if mode == "oom" and step == "design":
            print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
            return 1
        if step == "design":
            write_designs(designs, spec_stem, args.num_designs, seed=str(out.resolve()))
        elif step == "inverse_folding":
            inverse_fold(designs, folded, args.inverse_fold_num_sequences)
        elif step in ("folding", "design_folding"):
            sub = "refold_cif" if step == "folding" else "refold_design_cif"
            npz = "fold_out_npz" if step == "folding" else "fold_out_design_npz"
            for cif in sorted(folded.glob("*.cif")):
                (folded / sub).mkdir(parents=True, exist_ok=True)
                (folded / npz).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(cif, folded / sub / cif.name)
                (folded / npz / cif.with_suffix(".npz").name).write_bytes(b"PK fake npz")
        elif step == "analysis":
            write_analysis(folded, seed=str(out.resolve()), lose=int(os.environ.get("FAKE_BOLTZGEN_LOSE_DESIGNS", "0")))
        elif step == "filtering":
            code = write_filtering(folded, out, args.budget)
            if code:
                return code
        print(f"✓ Step {step} completed successfully in 0.0s")
    return 0


def pipeline_steps(args) -> list[str]:
    """BinderDesignPipeline's steps for the protocol, then `--steps` keeps a subset (filter_steps)."""
    steps = ["design", "inverse_folding"] if not args.skip_inverse_folding else ["design"]
    steps.append("folding")
    if args.protocol in ("protein-anything", "protein-small_molecule"):
        steps.append("design_folding")
    if args.protocol == "protein-small_molecule":
        steps.append("affinity")
    steps += ["analysis", "filtering"]
    if args.steps is not None:
        steps = [s for s in steps if s in args.steps]
    return steps


def write_designs(directory: Path, stem: str, num_designs: int, seed: str) -> None:
    """writer.py: `<stem>_<index, zero-padded to the digits of num_designs-1>.cif` (just `<stem>.cif` for one)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    length = int(os.environ.get("FAKE_BOLTZGEN_SEQUENCE_LENGTH", "12"))
    digits = len(str(num_designs - 1))
    for i in range(num_designs):
        name = f"{stem}_{i:0{digits}d}" if num_designs > 1 else stem
        sequence = "".join(rng.choice(AMINO) for _ in range(length))
        (directory / f"{name}.cif").write_text(f"data_{name}\n_entity_poly.pdbx_seq_one_letter_code {sequence}\n#\n")
        (directory / f"{name}.npz").write_bytes(b"PK fake npz")


def inverse_fold(designs: Path, folded: Path, sequences: int) -> None:
    """writer.py with multiplicity k: `<id>.cif` for k = 1, else `<id>_<n>.cif` (n zero-padded to the digits of
    k-1), each with a sequence of its own."""
    folded.mkdir(parents=True, exist_ok=True)
    digits = len(str(sequences - 1))
    for cif in sorted(p for p in designs.glob("*.cif") if not p.name.endswith("_native.cif")):
        sequence = _sequence(cif)
        for n in range(sequences):
            name = f"{cif.stem}_{n:0{digits}d}" if sequences > 1 else cif.stem
            rng = random.Random(hashlib.sha256(f"{cif}/{n}".encode()).hexdigest())
            new = sequence if n == 0 else "".join(rng.choice(AMINO) for _ in sequence)
            (folded / f"{name}.cif").write_text(f"data_{name}\n_entity_poly.pdbx_seq_one_letter_code {new}\n#\n")
            shutil.copyfile(cif.with_suffix(".npz"), folded / f"{name}.npz")


def _sequence(cif: Path) -> str:
    match = re.search(r"_entity_poly\.pdbx_seq_one_letter_code (\S+)", cif.read_text())
    return match.group(1) if match else ""


def write_analysis(directory: Path, seed: str, lose: int = 0) -> None:
    rows = []
    cifs = sorted(p for p in directory.glob("*.cif") if not p.name.endswith("_native.cif"))
    for _ in range(min(lose, len(cifs))):  # analyze.py run_parallel: the task in flight is marked done, not rerun
        print("\nPOOL BROKEN: A worker died. Restarting with remaining tasks…")
    for cif in cifs[lose:]:
        rng = random.Random(hashlib.sha256(f"{seed}/{cif.name}".encode()).hexdigest())
        sequence = _sequence(cif)
        rmsd = round(rng.uniform(0.5, 3.0), 5)
        rows.append({
            "id": cif.stem, "file_name": cif.name, "designed_sequence": sequence,
            "designed_chain_sequence": sequence, "num_design": len(sequence),
            "design_to_target_iptm": round(rng.uniform(0.2, 0.95), 5), "design_iptm": round(rng.uniform(0.2, 0.95), 5),
            "design_ptm": round(rng.uniform(0.3, 0.95), 5), "iptm": round(rng.uniform(0.2, 0.95), 5),
            "ptm": round(rng.uniform(0.3, 0.95), 5), "min_design_to_target_pae": round(rng.uniform(1, 20), 5),
            "min_interaction_pae": round(rng.uniform(1, 20), 5), "bb_rmsd": rmsd, "bb_rmsd_design": rmsd,
            "rmsd": rmsd, "rmsd_design": rmsd, "plip_hbonds_refolded": rng.randint(0, 8),
            "plip_saltbridge_refolded": rng.randint(0, 4), "delta_sasa_refolded": round(rng.uniform(300, 1500), 5),
            "design_hydrophobicity": round(rng.uniform(-1, 1), 5), "loop": 0.3, "helix": 0.5, "sheet": 0.2,
        })  # fmt: skip
    if not rows:  # analysis.yaml: fail_if_no_designs: true
        raise SystemExit("ValueError: No designs found in " + str(directory))
    write_csv(directory / "aggregate_metrics_analyze.csv", METRIC_COLUMNS, rows)
    write_csv(
        directory / "per_target_metrics_analyze.csv",
        ["target_id", "design_to_target_iptm", "design_ptm"],
        [{"target_id": rows[0]["id"].rsplit("_", 1)[0], "design_to_target_iptm": 0.5, "design_ptm": 0.6}],
    )
    table = {"id": [r["id"] for r in rows], "sequence": [r["designed_sequence"] for r in rows]}
    with gzip.open(directory / "ca_coords_sequences.pkl.gz", "wb") as f:
        pickle.dump(table, f)


def write_filtering(design_dir: Path, out: Path, budget: int, top_budget: int = 10) -> int:
    """filter.py: rank, keep unique sequences, copy refolded structures under rank<k>_ names, write CSVs and pdf."""
    csvs = sorted(design_dir.glob("aggregate_metrics_*.csv"))
    if not csvs:
        print(f"FileNotFoundError: No file starting with 'aggregate_metrics_' found in {design_dir}")
        return 1
    rows = read_csv(csvs[0])
    seen, unique = set(), []
    for row in rows:  # drop_duplicates(subset="designed_sequence", keep="first")
        if row["designed_sequence"] not in seen:
            seen.add(row["designed_sequence"])
            unique.append(row)
    unique.sort(key=lambda r: -float(r["design_to_target_iptm"]))
    n = len(unique)
    for rank, row in enumerate(unique, start=1):
        row.update({
            "final_rank": rank, "filter_rmsd": row["bb_rmsd"], "num_filters_passed": 2, "pass_filters": True,
            "has_x": False, "max_rank": rank, "secondary_rank": rank,
            "quality_score": round(1 - (rank - 1) / (n - 1), 5) if n > 1 else 1.0,
        })  # fmt: skip
    final = out / "final_ranked_designs"
    if final.exists():
        shutil.rmtree(final)
    top_dir = final / f"intermediate_ranked_{top_budget}_designs"
    div_dir = final / f"final_{budget}_designs"
    digits = len(str(n))
    for i, row in enumerate(unique[:top_budget]):
        new = f"rank{i:0{digits}d}_{row['file_name']}"
        (top_dir / "before_refolding").mkdir(parents=True, exist_ok=True)
        shutil.copy2(design_dir / row["file_name"], top_dir / "before_refolding" / new)
        shutil.copy2(design_dir / "refold_cif" / row["file_name"], top_dir / new)
    selected = unique[:budget]
    for row in selected:
        new = f"rank{row['final_rank']:0{digits}d}_{row['file_name']}"
        (div_dir / "before_refolding").mkdir(parents=True, exist_ok=True)
        shutil.copy2(design_dir / row["file_name"], div_dir / "before_refolding" / new)
        shutil.copy2(design_dir / "refold_cif" / row["file_name"], div_dir / new)
    columns = FILTER_COLUMNS + [c for c in METRIC_COLUMNS if c not in FILTER_COLUMNS]
    write_csv(final / f"final_designs_metrics_{budget}.csv", columns, selected)
    write_csv(final / "all_designs_metrics.csv", columns, unique)
    (final / "results_overview.pdf").write_bytes(b"%PDF-1.4 fake\n%%EOF\n")
    print("Files + CSV saved to", final)
    return 0


# ---------------------------------------------------------------------------------------------- merge


def merge_command(args) -> int:
    """cli/boltzgen.py merge_command: ids become `<slug(source dir name)>_<id>`; CSVs concatenated."""
    dest_root = args.output.expanduser().resolve()
    roots = []
    for src in args.sources:
        root = Path(src).expanduser().resolve()
        if root == dest_root:
            continue
        if not root.is_dir():
            print(f"FileNotFoundError: Source directory not found: {root}")
            return 1
        roots.append(root)
    dest_root.mkdir(parents=True, exist_ok=True)
    tags = {root: re.sub(r"[^0-9A-Za-z]+", "-", root.name).strip("-").lower() or f"run{i + 1}"
            for i, root in enumerate(roots)}  # fmt: skip
    id_map: dict[tuple[Path, str], str] = {}
    total = 0
    for dir_name in ("intermediate_designs_inverse_folded", "intermediate_designs"):
        metrics, per_target, table, columns = [], [], {"id": [], "sequence": []}, None
        dest = dest_root / dir_name
        for root in roots:
            src = root / dir_name
            if not src.exists():
                continue
            mappings = []
            metrics_path = src / "aggregate_metrics_analyze.csv"
            if metrics_path.exists():
                rows = read_csv(metrics_path)
                columns = columns or list(rows[0].keys()) if rows else columns
                for row in rows:
                    new_id = id_map.setdefault((root, row["id"]), f"{tags[root]}_{row['id']}")
                    new_file = new_id + "".join(Path(row["file_name"]).suffixes)
                    mappings.append((row["id"], new_id, row["file_name"], new_file))
                    metrics.append({**row, "id": new_id, "file_name": new_file})
            else:
                for (known_root, original), new_id in id_map.items():
                    if known_root == root:
                        mappings.append((original, new_id, f"{original}.cif", f"{new_id}.cif"))
            if not mappings:
                continue
            dest.mkdir(parents=True, exist_ok=True)
            seq = src / "ca_coords_sequences.pkl.gz"
            if seq.exists():
                with gzip.open(seq, "rb") as f:
                    old = pickle.load(f)
                lookup = {o: n for o, n, _, _ in mappings}
                for i, sid in enumerate(old["id"]):
                    if sid in lookup:
                        table["id"].append(lookup[sid])
                        table["sequence"].append(old["sequence"][i])
            if (src / "per_target_metrics_analyze.csv").exists():
                per_target += read_csv(src / "per_target_metrics_analyze.csv")
            for original, new_id, original_file, new_file in mappings:
                _copy(src / original_file, dest / new_file, required=True)
                _copy(src / f"{original}.npz", dest / f"{new_id}.npz", required=False)
                _copy(src / f"{original}_native.cif", dest / f"{new_id}_native.cif", required=False)
                _copy(src / "refold_cif" / original_file, dest / "refold_cif" / new_file, required=False)
                _copy(src / "refold_design_cif" / original_file, dest / "refold_design_cif" / new_file, required=False)
            total += len(mappings) if metrics_path.exists() else 0
        if metrics:
            write_csv(dest / "aggregate_metrics_analyze.csv", columns, metrics)
        if table["id"]:
            with gzip.open(dest / "ca_coords_sequences.pkl.gz", "wb") as f:
                pickle.dump(table, f)
        if per_target:
            write_csv(dest / "per_target_metrics_analyze.csv", list(per_target[0].keys()), per_target)
    if total == 0:
        print("No designs found to merge.")
    else:
        print(f"Merged {len(roots)} source(s) into {dest_root}")
        print(f"Total designs available for filtering: {total}")
    return 0


def _copy(src: Path, dst: Path, required: bool) -> None:
    if src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    elif required:
        raise FileNotFoundError(f"Required file missing during merge: {src}")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())

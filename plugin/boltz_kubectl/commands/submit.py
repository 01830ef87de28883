"""`predict`, `design` and `screen`: convert the user's files, then print (--dry-run=client), validate on the server
(--dry-run=server) or upload the large files and create the objects. Every input is converted and checked before
anything is created, so one bad input in a directory creates nothing."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from boltz_operator.api.screen import BoltzScreenSpec

from ..errors import PluginError
from ..inputs.boltz import INPUT_SUFFIXES, convert_boltz_input
from ..inputs.boltzgen import convert_design_spec
from ..inputs.screen import convert_screen_target, read_library
from ..kube import Kube
from ..manifests import (
    ResultsOptions,
    Submission,
    build_campaign,
    build_prediction,
    build_screen,
    check_name,
    default_name,
)
from ..s3 import s3_client, upload
from .follow import wait_for
from .output import print_objects

# --option -> spec.options key of a BoltzPrediction (the `boltz predict` flags a boltz YAML cannot carry).
PREDICT_OPTIONS = {
    "diffusion_samples": "diffusionSamples",
    "recycling_steps": "recyclingSteps",
    "sampling_steps": "samplingSteps",
    "seed": "seed",
    "output_format": "outputFormat",
    "use_potentials": "usePotentials",
}


def input_files(paths: list[str]) -> list[Path]:
    """The inputs named: files as given, directories expanded to the inputs directly inside them (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
            if not inside:
                raise PluginError(f"{path}: no boltz inputs ({', '.join(INPUT_SUFFIXES)}) in this directory")
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise PluginError(f"{path}: no such file or directory")
    return found


def results_options(args: argparse.Namespace) -> ResultsOptions | None:
    if not args.results:
        for flag in ("s3_endpoint", "s3_region", "s3_credentials_secret"):
            if getattr(args, flag):
                raise PluginError(f"--{flag.replace('_', '-')} needs --results s3://...")
        return None
    if not args.results.startswith("s3://"):
        raise PluginError(f"--results must be an s3:// URI, got {args.results!r}")
    return ResultsOptions(args.results, args.s3_endpoint, args.s3_region, args.s3_credentials_secret)


def predict(args: argparse.Namespace, kube: Kube | None) -> int:
    paths = input_files(args.inputs)
    if args.name and len(paths) > 1:
        raise PluginError(f"--name names one prediction, but {len(paths)} inputs were given")
    results = results_options(args)
    options = predict_options(args)
    namespace = _namespace(args, kube)
    submissions = []
    problems: list[str] = []
    for path in paths:
        try:
            name = check_name(args.name or default_name(path))
            converted = convert_boltz_input(path)
            submissions.append(build_prediction(converted, name, namespace, args.model_cache, results, options))
        except PluginError as e:
            problems.append(str(e))
    _refuse_duplicates(submissions, problems)
    return _submit(args, kube, submissions, problems)


def predict_options(args: argparse.Namespace) -> dict[str, Any]:
    """spec.options of a prediction or screen from the --diffusion-samples ... --no-kernels flags given."""
    options = {key: getattr(args, attr) for attr, key in PREDICT_OPTIONS.items() if getattr(args, attr) is not None}
    if args.no_kernels:
        options["useKernels"] = False
    return options


def screen(args: argparse.Namespace, kube: Kube | None) -> int:
    """`screen TARGET LIBRARY`: one BoltzScreen (and the ConfigMap `<name>-inputs`, or an upload, for its files),
    submitted as `predict` submits (_submit). Returns the exit code; raises PluginError for a target or library the
    screen cannot take, a flag for another library format, or what build_screen refuses, before anything is made."""
    target_path, library_path = Path(args.target), Path(args.library)
    if target_path.is_dir():
        raise PluginError(f"{target_path}: is a directory; a screen takes one target file (boltz YAML or FASTA)")
    if not target_path.is_file():
        raise PluginError(f"{target_path}: no such file")
    name = check_name(args.name or default_name(target_path))
    if args.ligand_chain == "":
        raise PluginError("--ligand-chain must not be empty: give a chain id (default L), or leave the flag out")
    chain = args.ligand_chain or BoltzScreenSpec.model_fields["ligand_chain"].default
    target = convert_screen_target(target_path, chain, affinity=not args.no_affinity)
    library = read_library(library_path, {f.key for f in target.files}, args.csv_id_column or "id",
                           args.csv_smiles_column or "smiles")  # fmt: skip
    library_fields = {}
    for flag, key, fmt in (("csv_id_column", "idColumn", "csv"), ("csv_smiles_column", "smilesColumn", "csv"),
                           ("sdf_id_property", "idProperty", "sdf")):  # fmt: skip
        if getattr(args, flag) is not None:
            if library.format.value != fmt:
                raise PluginError(f"--{flag.replace('_', '-')} is for a .{fmt} library, not {library_path.name}")
            library_fields[key] = getattr(args, flag)
    settings: dict[str, Any] = {"library": library_fields}
    if args.ligand_chain:
        settings["ligandChain"] = args.ligand_chain
    if args.no_affinity:
        settings["affinity"] = False
    if args.shards is not None:
        if args.shards < 1:
            raise PluginError(f"--shards must be at least 1, got {args.shards}")
        # the CRD counts ligands per shard; the library's entry count (the worker's rules) gives the shard count
        settings["ligandsPerShard"] = math.ceil(library.entries / args.shards)
    elif args.ligands_per_shard is not None:
        settings["ligandsPerShard"] = args.ligands_per_shard
    for attr, key in (("parallelism", "parallelism"), ("top_k", "topK")):
        if getattr(args, attr) is not None:
            settings[key] = getattr(args, attr)
    options = predict_options(args)
    if options:
        settings["options"] = options
    submission = build_screen(
        target, library, name, _namespace(args, kube), settings, args.model_cache, results_options(args)
    )
    per_shard = settings.get("ligandsPerShard") or BoltzScreenSpec.model_fields["ligands_per_shard"].default
    shards = math.ceil(library.entries / per_shard)
    ligands = f"{library.entries} ligand" + ("" if library.entries == 1 else "s")
    note = f"library: {ligands} in {shards} shard{'' if shards == 1 else 's'} of up to {per_shard}"
    return _submit(args, kube, [submission], [], note)


def design(args: argparse.Namespace, kube: Kube | None) -> int:
    path = Path(args.spec)
    if path.is_dir():
        raise PluginError(f"{path}: is a directory; a campaign takes one design spec file")
    if not path.is_file():
        raise PluginError(f"{path}: no such file")
    name = check_name(args.name or default_name(path))
    settings: dict[str, Any] = {"numDesigns": args.num_designs}
    for attr, key in (("budget", "budget"), ("protocol", "protocol"), ("parallelism", "parallelism")):
        if getattr(args, attr) is not None:
            settings[key] = getattr(args, attr)
    if args.shards is not None:
        settings["shards"] = args.shards if args.shards == "auto" else int(args.shards)
    converted = convert_design_spec(path)
    submission = build_campaign(
        converted, name, _namespace(args, kube), settings, args.model_cache, results_options(args)
    )
    return _submit(args, kube, [submission], [])


def _namespace(args: argparse.Namespace, kube: Kube | None) -> str:
    return kube.namespace if kube is not None else (args.namespace or "default")


def _refuse_duplicates(submissions: list[Submission], problems: list[str]) -> None:
    seen: dict[str, Submission] = {}
    for s in submissions:
        if s.name in seen:
            problems.append(f"two inputs would both be named {s.name!r}; rename one of the files")
        seen[s.name] = s


def _submit(
    args: argparse.Namespace,
    kube: Kube | None,
    submissions: list[Submission],
    problems: list[str],
    note: str | None = None,
) -> int:
    """Print, validate or create `submissions`; `note` goes to stderr once they are printed or created."""
    if problems:
        raise PluginError("nothing was created:", problems)
    if args.dry_run == "client":
        for s in submissions:
            for u in s.uploads:
                print(f"# not uploaded (dry run): {u.file.path} -> {u.uri}", file=sys.stderr)
        print_objects([o for s in submissions for o in s.objects()], args.output, "created (dry run)")
        if note:
            print(note, file=sys.stderr)
        return 0
    assert kube is not None  # main() connects for every mode but --dry-run=client
    existing = [f"{found} already exists" for s in submissions for found in kube.existing(s)]
    if existing:
        raise PluginError(
            f"nothing was created in namespace {kube.namespace} (a run's inputs are immutable, and a name is one "
            "prediction, campaign or screen: choose another --name, or delete the old one first):",
            existing,
        )
    server_dry_run = args.dry_run == "server"
    if not server_dry_run:
        # the apiserver's verdict (CEL rules, quotas, admission) on every object before any upload or creation, so
        # a refusal leaves nothing behind, in the cluster or in S3
        for s in submissions:
            kube.create(s, dry_run=True)
        for s in [s for s in submissions if s.uploads]:
            client = s3_client(args.s3_endpoint, args.s3_region)
            for u in s.uploads:
                upload(client, u.file.path, u.uri)
    created = []
    for s in submissions:
        created += kube.create(s, dry_run=server_dry_run)
    print_objects(created, args.output, "created (server dry run)" if server_dry_run else "created")
    if note:
        print(note, file=sys.stderr)
    if not args.wait or server_dry_run:
        return 0
    codes = [wait_for(kube, s.kind, s.name, args.timeout) for s in submissions]
    return max(codes)

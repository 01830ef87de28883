"""`kubectl boltz` (the executable kubectl-boltz): argument parsing and dispatch.

kubectl hands a plugin every argument after `kubectl boltz`, its own global flags included, so the flags kubectl
users type (-n/--namespace, --kubeconfig, --context) are accepted before or after the subcommand.
Exit codes: 0 success, 1 error (bad input, API or store errors, a run that Failed), 2 command-line usage,
3 a wait that timed out.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from boltz_operator.api.campaign import Protocol

from .commands import follow, submit
from .errors import ExitCode, PluginError
from .inputs.files import CONFIGMAP_FILE_LIMIT, CONFIGMAP_TOTAL_LIMIT, MAX_FILE_BYTES
from .inputs.screen import MAX_LIBRARY_BYTES
from .kube import Kube
from .pvc import DEFAULT_READER_IMAGE

EPILOG = """exit codes: 0 success, 1 error (bad input, API or store error, a run that Failed), 2 usage, 3 timed out
examples:
  kubectl boltz predict affinity.yaml --results s3://bucket/boltz --wait
  kubectl boltz predict inputs/ --dry-run=client -o yaml > predictions.yaml
  kubectl boltz design binder.yaml --num-designs 2000 --budget 50 --protocol protein-anything
  kubectl boltz screen egfr.yaml kinase-library.smi --ligands-per-shard 200 --top-k 20
  kubectl boltz status affinity; kubectl boltz logs affinity; kubectl boltz results affinity -o out/"""

FILES_HELP = (
    f"Files the input names (MSAs, templates, targets) are resolved against its folder (then the current "
    f"directory) and must lie inside that folder. Files up to {CONFIGMAP_FILE_LIMIT // 1024} KiB go into a ConfigMap "
    f"<name>-inputs owned by the resource (at most {CONFIGMAP_TOTAL_LIMIT // 1024} KiB in all); larger ones, up to "
    f"{MAX_FILE_BYTES // (1024 * 1024)} MiB, are uploaded with your own S3 credentials under "
    "<--results>/<namespace>/<name>/inputs/ (so they need --results)."
)


SCREEN_HELP = (
    "Those are the rules for the target's files. The library's format comes from its extension (.smi, .csv, .sdf; "
    f"read by the worker with RDKit). A library that fits in the ConfigMap <name>-inputs with the target's files (at "
    f"most {CONFIGMAP_TOTAL_LIMIT // 1024} KiB in all) goes there; a larger one (up to "
    f"{MAX_LIBRARY_BYTES // (1024 * 1024)} MiB) is uploaded with your S3 credentials under "
    "<--results>/<namespace>/<name>/inputs/, so it needs --results."
)


def _global_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", default=default, help="kubeconfig context to use")


def _submit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="resource name (default: the file name, e.g. prot_msa.yaml -> prot-msa)")
    p.add_argument("--model-cache", help="the BoltzModelCache to use (default: the CRD's, `default`)")
    p.add_argument("--results", metavar="S3_URI", help="results store s3://bucket/prefix (default: the operator's)")
    p.add_argument("--s3-endpoint", help="S3-compatible endpoint URL of --results (also for your uploads)")
    p.add_argument("--s3-region", help="region of the --results bucket")
    p.add_argument("--s3-credentials-secret", help="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for workers")
    p.add_argument("--dry-run", choices=("none", "client", "server"), default="none", nargs="?", const="client",
                   help="client: print the manifests, create nothing; server: have the apiserver validate them")  # fmt: skip
    p.add_argument("-o", "--output", choices=("yaml", "json", "name"), help="print the objects in this format")
    p.add_argument("--wait", action="store_true", help="wait until the run Succeeded or Failed")
    p.add_argument("--timeout", help="with --wait: give up after this long (e.g. 30m); default no limit")


def _predict_option_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--diffusion-samples", type=int, help="structures to sample (boltz --diffusion_samples)")
    p.add_argument("--recycling-steps", type=int, help="boltz --recycling_steps")
    p.add_argument("--sampling-steps", type=int, help="boltz --sampling_steps")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--output-format", choices=("mmcif", "pdb"), help="structure file format")
    p.add_argument("--use-potentials", action="store_true", default=None, help="boltz --use_potentials")
    p.add_argument("--no-kernels", action="store_true", help="run without the cuEquivariance kernels")


def _shard_index(text: str) -> int:
    """--shard: a shard's completion index, 0 or more."""
    try:
        index = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a shard index: {text!r}") from None
    if index < 0:
        raise argparse.ArgumentTypeError(f"a shard index is 0 or more, got {index}")
    return index


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl boltz",
        description="Submit Boltz inputs and BoltzGen design specs to the boltz-operator, follow runs, fetch results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_flags(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, run: Callable) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _global_flags(p, suppress=True)
        p.set_defaults(run=run)
        return p

    p = command("predict", "create a BoltzPrediction from each boltz input (.yaml or .fasta, or a folder of them)",
                submit.predict)  # fmt: skip
    p.epilog = FILES_HELP
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="boltz YAML or FASTA file, or a directory of them")
    _submit_flags(p)
    _predict_option_flags(p)

    p = command("design", "create a BoltzGenCampaign from a boltzgen design spec and its target files", submit.design)
    p.epilog = FILES_HELP
    p.add_argument("spec", metavar="SPEC", help="boltzgen design spec (.yaml); its files resolve against its folder")
    p.add_argument("--num-designs", type=int, required=True, help="designs to generate across all shards")
    p.add_argument("--budget", type=int, help="designs in the final ranked set (default: boltzgen's)")
    p.add_argument(
        "--protocol", choices=[p.value for p in Protocol], help="boltzgen protocol (default protein-anything)"
    )
    p.add_argument("--shards", help="design shards: a number or auto (default auto)")
    p.add_argument("--parallelism", type=int, help="most shard pods at once")
    _submit_flags(p)

    p = command("screen", "create a BoltzScreen: a boltz input (the target) against a ligand library file",
                submit.screen)  # fmt: skip
    p.epilog = f"{FILES_HELP} {SCREEN_HELP}"
    p.add_argument("target", metavar="TARGET", help="boltz YAML or FASTA: the fixed part of the complex")
    p.add_argument("library", metavar="LIBRARY", help="the ligands: .smi (SMILES id per line), .csv or .sdf")
    _submit_flags(p)
    p.add_argument("--ligand-chain", help="the chain id each library ligand takes (default L)")
    per_shard = p.add_mutually_exclusive_group()
    per_shard.add_argument("--ligands-per-shard", type=int, help="ligands per GPU shard (default 50)")
    per_shard.add_argument("--shards", type=int, help="at most N GPU shards: the library's entries split evenly "
                           "(ligandsPerShard = ceil(entries/N), so fewer shards when that leaves some empty)")  # fmt: skip
    p.add_argument("--parallelism", type=int, help="most shard pods (GPUs) at once (default every shard)")
    p.add_argument("--top-k", type=int, help="best ligands in status (default 20)")
    p.add_argument("--no-affinity", action="store_true", help="structure only, ranked by ligand ipTM")
    p.add_argument("--csv-id-column", help="csv: the column holding ligand ids (spec.library.idColumn, default id)")
    p.add_argument(
        "--csv-smiles-column", help="csv: the column holding SMILES (spec.library.smilesColumn, default smiles)"
    )
    p.add_argument("--sdf-id-property", help="sdf: the property holding ids (spec.library.idProperty, default the "
                   "title line)")  # fmt: skip
    _predict_option_flags(p)

    kind_help = "look only for this kind (needed when the name exists as two kinds)"
    p = command("status", "phase, scores, progress, the condition that explains a wait or failure, Events",
                follow.status)  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", choices=tuple(follow.KIND_FLAGS), help=kind_help)
    p.add_argument("-o", "--output", choices=("yaml", "json", "wide"), help="the whole object, or wider tables")

    p = command("logs", "the worker's log: a prediction's newest pod (its GPU step, else its prepare step), a "
                "campaign's shard 0 unless --shard or --filter, a screen's shard 0 (else its prepare step) unless "
                "--shard, --prepare or --rank", follow.logs)  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", choices=tuple(follow.KIND_FLAGS), help=kind_help)
    step = p.add_mutually_exclusive_group()
    step.add_argument("--shard", type=_shard_index,
                      help="campaigns: the design shard; screens: the GPU shard (completion index; default 0)")  # fmt: skip
    step.add_argument("--filter", action="store_true", help="campaigns: the filter Job's pod")
    step.add_argument("--prepare", action="store_true", help="screens: the prepare Job's pod")
    step.add_argument("--rank", action="store_true", help="screens: the rank Job's pod")
    p.add_argument("--tail", type=int, help="only the last lines")

    p = command("wait", "wait until the run Succeeded (exit 0) or Failed (exit 1)", follow.wait)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", choices=tuple(follow.KIND_FLAGS), help=kind_help)
    p.add_argument("--timeout", help="give up after this long (e.g. 90s, 30m; exit 3); default no limit")

    p = command("results", "download the result files (S3 with your credentials, or a PVC through a reader pod), "
                "checked against result.json (screens: the ranked table, report and top ligands' structures)",
                follow.results)  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p.add_argument("--kind", choices=tuple(follow.KIND_FLAGS), help=kind_help)
    p.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder to write the files into")
    p.add_argument("--all-structures", action="store_true",
                   help="screens: every ligand's structure (default: the top ligands' and the ranked table)")  # fmt: skip
    p.add_argument("--s3-endpoint", help="S3-compatible endpoint (default: the one in the resource's spec.results)")
    p.add_argument("--s3-region", help="region of the bucket")
    p.add_argument("--reader-image", default=DEFAULT_READER_IMAGE,
                   help="results on a PVC: image of the reader pod (needs sh, tar, base64; default %(default)s)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        offline = getattr(args, "dry_run", None) == "client"  # prints manifests: needs no cluster
        kube = None if offline else Kube.connect(args.kubeconfig, args.context, args.namespace)
        code = int(args.run(args, kube))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except PluginError as e:
        print(f"error: {e}", file=sys.stderr)
        return int(e.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly; stdout goes to devnull so the flush at exit cannot fail
        # again (https://docs.python.org/3/library/signal.html#note-on-sigpipe)
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return int(ExitCode.ERROR)
    except OSError as e:  # writing output or files: the reason, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return int(ExitCode.ERROR)


if __name__ == "__main__":
    sys.exit(main())

"""The `boltzgen run` / `boltzgen merge` argument lists: exact option names (checked against the fake's copy of
boltzgen 0.3.2's parser), local model paths, the analysis process count, and failure classification."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from boltz_contract import BoltzGenModels, DesignOptions, ErrorClass, FilterOptions
from boltz_worker.boltz_runs.boltz_outputs import BoltzLog
from boltz_worker.boltzgen_runs.boltzgen_command import (
    BoltzResult,
    boltzgen_executable,
    build_design_argv,
    build_filter_argv,
    build_merge_argv,
    child_env,
    failure,
)
from support.fake_boltzgen.fake_boltzgen import build_parser

SPEC, OUT = Path("/etc/boltz-run/binder.yaml"), Path("/work/boltzgen/shard-3")
MODELS = BoltzGenModels()


def design_argv(options: DesignOptions | None = None, cpus: int = 6, protocol="protein-anything") -> list[str]:
    return build_design_argv(["boltzgen"], SPEC, OUT, protocol, 25, options or DesignOptions(), MODELS, cpus)


def parse(argv: list[str]):
    return build_parser().parse_args(argv[1:])


def test_design_argv_defaults():
    assert design_argv() == [
        "boltzgen", "run", "/etc/boltz-run/binder.yaml",
        "--output", "/work/boltzgen/shard-3",
        "--protocol", "protein-anything",
        "--num_designs", "25",
        "--devices", "1",
        "--use_kernels", "auto",
        "--inverse_fold_num_sequences", "1",
        "--moldir", "/models/boltzgen/mols.zip",
        "--design_checkpoints", "/models/boltzgen/boltzgen1_diverse.ckpt", "/models/boltzgen/boltzgen1_adherence.ckpt",
        "--inverse_fold_checkpoint", "/models/boltzgen/boltzgen1_ifold.ckpt",
        "--folding_checkpoint", "/models/boltzgen/boltz2_conf_final.ckpt",
        "--affinity_checkpoint", "/models/boltzgen/boltz2_aff.ckpt",
        "--steps", "design", "inverse_folding", "design_folding", "folding", "affinity", "analysis",
        "--config", "analysis", "num_processes=6",
    ]  # fmt: skip


def test_design_argv_parses_with_boltzgens_option_names():
    args = parse(design_argv())
    assert args.command == "run" and args.design_spec == [SPEC] and args.output == OUT
    assert args.num_designs == 25 and args.devices == 1
    assert "filtering" not in args.steps
    assert args.config == [["analysis", "num_processes=6"]]
    assert not any(a.startswith("huggingface:") for a in [args.moldir, *args.design_checkpoints])
    assert args.folding_checkpoint == "/models/boltzgen/boltz2_conf_final.ckpt"


def test_design_options_are_passed_through():
    options = DesignOptions(
        steps=["design", "analysis"], diffusion_batch_size=5, step_scale=1.8, noise_scale=0.98,
        skip_inverse_folding=True, inverse_fold_num_sequences=2, inverse_fold_avoid="KC", use_kernels="false",
        num_workers=3, reuse=True,
    )  # fmt: skip
    args = parse(design_argv(options, protocol="peptide-anything"))
    assert args.protocol == "peptide-anything" and args.steps == ["design", "analysis"]
    assert (args.diffusion_batch_size, args.step_scale, args.noise_scale) == (5, "1.8", "0.98")
    assert args.skip_inverse_folding and args.reuse and args.inverse_fold_num_sequences == 2
    assert args.inverse_fold_avoid == "KC" and args.use_kernels == "false" and args.num_workers == 3


def test_analysis_processes_follow_the_container_cpus():
    assert design_argv(cpus=2)[-3:] == ["--config", "analysis", "num_processes=2"]
    assert design_argv(cpus=0)[-1] == "num_processes=1"


def test_filter_argv():
    options = FilterOptions(
        alpha=0.01, filter_biased=False, metrics_override={"design_ptm": 2.0, "plip_hbonds_refolded": None},
        additional_filters=["design_ALA>0.3"], size_buckets=["10-20:5"], refolding_rmsd_threshold=2.5,
    )  # fmt: skip
    argv = build_filter_argv(["boltzgen"], SPEC, Path("/work/m"), "protein-anything", 12, True, options, MODELS)
    args = parse(argv)
    assert args.steps == ["filtering"] and args.budget == 12 and args.output == Path("/work/m")
    assert args.filter_biased == "false" and args.alpha == 0.01 and args.refolding_rmsd_threshold == 2.5
    assert args.metrics_override == ["design_ptm=2.0", "plip_hbonds_refolded=none"]
    assert args.additional_filters == ["design_ALA>0.3"] and args.size_buckets == ["10-20:5"]
    assert args.skip_inverse_folding
    assert args.moldir == "/models/boltzgen/mols.zip"  # boltzgen configures all steps: model paths needed too


def test_filter_argv_defaults_are_minimal():
    argv = build_filter_argv(["bg"], SPEC, Path("/m"), "protein-anything", 30, False, FilterOptions(), MODELS)
    assert "--alpha" not in argv and "--metrics_override" not in argv and "--skip_inverse_folding" not in argv
    assert argv[argv.index("--filter_biased") + 1] == "true"


def test_merge_argv_needs_distinct_names():
    sources = [Path("/w/shards/shard-00000"), Path("/w/shards/shard-00002")]
    argv = build_merge_argv(["boltzgen"], sources, Path("/w/merged"))
    args = parse(argv)
    assert args.command == "merge" and args.sources == sources and args.output == Path("/w/merged")
    with pytest.raises(ValueError):
        build_merge_argv(["boltzgen"], [Path("/a/x"), Path("/b/x")], Path("/m"))


def test_unknown_options_are_rejected_by_the_fake():
    with pytest.raises(SystemExit):
        parse(["boltzgen", "run", "s.yaml", "--output", "o", "--num-designs", "3"])
    with pytest.raises(SystemExit):
        parse(["boltzgen", "run", "s.yaml", "--steps", "filter"])


def test_executable_override_and_env(monkeypatch):
    monkeypatch.delenv("BOLTZGEN_EXECUTABLE", raising=False)
    assert boltzgen_executable() == ["boltzgen"]
    monkeypatch.setenv("BOLTZGEN_EXECUTABLE", shlex.join(["/usr/bin/python3", "/x y/fake.py"]))
    assert boltzgen_executable() == ["/usr/bin/python3", "/x y/fake.py"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert child_env()["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (0, "all good", None),
        (1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate", ErrorClass.GPU_OUT_OF_MEMORY),
        (1, "RuntimeError: Found no NVIDIA driver on your system.", ErrorClass.GPU_DEVICE_ERROR),
        (1, "FileNotFoundError: Model not found: /models/boltzgen/mols.zip", ErrorClass.MODEL_CACHE_UNUSABLE),
        (1, "ValueError: Malformed residue range specification 'all' in 'all'.", ErrorClass.INVALID_INPUT),
        (1, "ValueError: Specified chain id Q not in file /work/inputs/target-1.cif", ErrorClass.INVALID_INPUT),
        (
            1,
            "ValueError: Misspecified design info. There were residues that have a binding type specified",
            ErrorClass.INVALID_INPUT,
        ),
        (1, "ValueError: something else", ErrorClass.INTERNAL),
    ],
)
def test_failure_classification(code, text, expected):
    error = failure(BoltzResult(returncode=code, log=BoltzLog.of(text), seconds=1.0), "boltzgen run")
    assert (error.error_class if error else None) == expected

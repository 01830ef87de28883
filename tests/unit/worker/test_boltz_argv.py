"""The `boltz predict` argument list, the executable override and the container CPU count."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from boltz_contract import PredictOptions
from boltz_worker.boltz_runs.boltz_command import boltz_executable, build_boltz_argv, cgroup_cpu_limit, container_cpus
from support.fake_boltz.fake_boltz import build_parser

INPUT, OUT, CACHE = Path("/work/rec.yaml"), Path("/work/out"), Path("/models/boltz2")


def argv_for(options: PredictOptions, cpus: int = 4, accelerator: str = "gpu") -> list[str]:
    return build_boltz_argv(["boltz"], INPUT, OUT, CACHE, options, cpus, accelerator)


def test_default_options_give_exactly_the_always_present_flags():
    assert argv_for(PredictOptions()) == [
        "boltz", "predict", "/work/rec.yaml",
        "--out_dir", "/work/out",
        "--cache", "/models/boltz2",
        "--accelerator", "gpu",
        "--devices", "1",
        "--recycling_steps", "3",
        "--sampling_steps", "200",
        "--diffusion_samples", "1",
        "--sampling_steps_affinity", "200",
        "--diffusion_samples_affinity", "5",
        "--output_format", "mmcif",
        "--num_workers", "4",
        "--preprocessing-threads", "4",
    ]  # fmt: skip


def every_option_set() -> PredictOptions:
    return PredictOptions(
        recycling_steps=10,
        sampling_steps=50,
        diffusion_samples=5,
        max_parallel_samples=2,
        step_scale=1.2,
        output_format="pdb",
        use_potentials=True,
        seed=7,
        sampling_steps_affinity=100,
        diffusion_samples_affinity=3,
        affinity_mw_correction=True,
        use_msa_server=True,
        msa_server_url="http://msa.internal:8080",
        msa_pairing_strategy="complete",
        msa_api_key_header="X-API-Key",
        max_msa_seqs=4096,
        subsample_msa=True,
        num_subsampled_msa=512,
        use_kernels=False,
    )


def test_every_option_reaches_boltz_under_its_own_name():
    args = build_parser().parse_args(argv_for(every_option_set())[1:])
    assert (args.recycling_steps, args.sampling_steps, args.diffusion_samples) == (10, 50, 5)
    assert (args.max_parallel_samples, args.step_scale, args.output_format, args.seed) == (2, 1.2, "pdb", 7)
    assert args.use_potentials and args.affinity_mw_correction and args.subsample_msa and args.no_kernels
    assert (args.sampling_steps_affinity, args.diffusion_samples_affinity) == (100, 3)
    assert args.use_msa_server
    assert (args.msa_server_url, args.msa_pairing_strategy, args.api_key_header) == (
        "http://msa.internal:8080",
        "complete",
        "X-API-Key",
    )
    assert (args.max_msa_seqs, args.num_subsampled_msa) == (4096, 512)
    assert args.preprocessing_threads == 4 and args.num_workers == 4


def test_default_argv_parses_with_boltz_option_names():
    args = build_parser().parse_args(argv_for(PredictOptions())[1:])
    assert args.cache == "/models/boltz2" and args.accelerator == "gpu" and args.devices == 1
    assert not args.use_msa_server and not args.no_kernels and not args.use_potentials


def test_the_fake_boltz_rejects_a_misspelt_flag():
    # The guard the integration tests rely on: a typo in our argv must fail, not be ignored.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "x.yaml", "--diffusion-samples", "2"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "x.yaml", "--diffusion_sample", "2"])  # no abbreviations


def test_msa_server_options_only_with_the_msa_server():
    options = PredictOptions(msa_server_url="http://x", msa_api_key_header="X-Key", msa_pairing_strategy="complete")
    argv = argv_for(options)
    assert not {"--use_msa_server", "--msa_server_url", "--api_key_header", "--msa_pairing_strategy"} & set(argv)


def test_msa_server_without_url_or_header_leaves_boltz_defaults():
    argv = argv_for(PredictOptions(use_msa_server=True))
    assert argv[-3:] == ["--use_msa_server", "--msa_pairing_strategy", "greedy"]
    assert "--msa_server_url" not in argv and "--api_key_header" not in argv


def test_the_api_key_value_never_appears_in_argv():
    argv = argv_for(every_option_set())
    assert "--api_key_value" not in argv


def test_kernels_on_means_no_flag():
    assert "--no_kernels" not in argv_for(PredictOptions(use_kernels=True))
    assert "--no_kernels" in argv_for(PredictOptions(use_kernels=False))


def test_accelerator_is_passed_through():
    assert argv_for(PredictOptions(), accelerator="cpu")[7:9] == ["--accelerator", "cpu"]


def test_boltz_executable_is_split_like_a_command_line(monkeypatch):
    monkeypatch.delenv("BOLTZ_EXECUTABLE", raising=False)
    assert boltz_executable() == ["boltz"]
    monkeypatch.setenv("BOLTZ_EXECUTABLE", shlex.join(["/usr/bin/python3", "/tests/fake boltz.py"]))
    assert boltz_executable() == ["/usr/bin/python3", "/tests/fake boltz.py"]


# ---------------------------------------------------------------------------------------------- cpus


@pytest.mark.parametrize(
    "cpu_max, expected",
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2),
        ("150000 100000\n", 2),  # 1.5 CPUs: round up
        ("50000 100000\n", 1),
        ("1000 100000\n", 1),  # never 0
        ("garbage\n", None),
        ("", None),
    ],
)
def test_cgroup_cpu_limit(tmp_path, cpu_max, expected):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert cgroup_cpu_limit(path) == expected


def test_cgroup_cpu_limit_without_the_file(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_container_cpus_prefers_the_override_then_the_cgroup(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("300000 100000\n")
    monkeypatch.delenv("BOLTZ_WORKER_CPUS", raising=False)
    assert container_cpus(cpu_max) == 3
    monkeypatch.setenv("BOLTZ_WORKER_CPUS", "6")
    assert container_cpus(cpu_max) == 6
    monkeypatch.setenv("BOLTZ_WORKER_CPUS", "0")
    assert container_cpus(cpu_max) == 1
    monkeypatch.setenv("BOLTZ_WORKER_CPUS", "lots")
    assert container_cpus(cpu_max) == 3  # an unusable override is ignored


def test_container_cpus_without_a_limit_counts_schedulable_cpus(tmp_path, monkeypatch):
    monkeypatch.delenv("BOLTZ_WORKER_CPUS", raising=False)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert container_cpus(cpu_max) == 5

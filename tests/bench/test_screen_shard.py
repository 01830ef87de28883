"""One screen shard (`boltz-worker screen-shard`: ONE `boltz predict` over N ligand inputs) against N single runs,
with the real boltz 2.2.1 on CPU and the small random checkpoints of the fidelity tests: the fixed cost (process
start and imports, the model loads) and the per-ligand cost.

Each run streams the worker's output (boltz's, echoed line by line) and notes when boltz prints: "Checking input
data." (the worker set up, boltz started and imported), "Running structure prediction" (inputs processed),
"Predicting property: affinity" (the structure model loaded and every structure predicted), "Running affinity
prediction" and the exit. The per-ligand cost is the slope between shard sizes; the fixed cost is one shard's time
less its ligands at that slope. The N single runs are N shards of one ligand each, run one after another.

Prints figures, asserts only that every run succeeded. The target is the 30-residue cut of examples/prediction.yaml's
kinase in single-sequence mode, ligands of 10 to 20 heavy atoms; a real GPU run with the real weights differs in
every figure (DESIGN.md: on an L4, ~31 s fixed, ~11 s a complex): what carries over is the shape, fixed + N x each.

    .venv/bin/pytest tests/bench/test_screen_shard.py -s -p no:cacheprovider
    BOLTZ_BENCH_SCREEN_SIZES=1,8,32 (default 1,8)   BOLTZ_BENCH_SCREEN_SINGLES=8 (single runs; default 3, scaled up)
Needs the boltz venv and the fidelity caches (make boltz-venv; a fidelity test run builds the checkpoints and mols).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from boltz_contract import ResultsTarget
from boltz_contract.screen import ScreenShardRun
from boltz_worker.results.results_store import open_results_store
from boltz_worker.screen_runs.slices import slice_ligands, write_slices
from support.fidelity import CACHE_HOME, example_spec
from support.screen_worker import CPU_PREDICT_OPTIONS

REPO = Path(__file__).resolve().parents[2]
FIDELITY = REPO / "tests" / "integration" / "fidelity"
SIZES = [int(n) for n in os.environ.get("BOLTZ_BENCH_SCREEN_SIZES", "1,8").split(",")]
SINGLES = int(os.environ.get("BOLTZ_BENCH_SCREEN_SINGLES", "3"))
CPUS = 2
MARKERS = {"started": "Checking input data.", "processed": "Running structure prediction for",
           "affinity": "Predicting property: affinity", "affinity_model": "Running affinity prediction for"}  # fmt: skip
KINASE = example_spec()["sequences"][0]["protein"]["sequence"]
TARGET = {"version": 1, "sequences": [{"protein": {"id": "A", "sequence": KINASE, "msa": "empty"}},
                                      {"ligand": {"id": "L", "smiles": "CCO"}}],
          "properties": [{"affinity": {"binder": "L"}}]}  # fmt: skip


def ligands(n: int, start: int = 0) -> list[dict]:
    """Distinct small ligands: an acetanilide with an alkyl alcohol (10 to 20 heavy atoms)."""
    return [{"id": f"lig-{k}", "smiles": f"CC(=O)Nc1ccc(cc1)C{'C' * (k % 8)}O{'C' * (k // 8 % 4)}", "ccd": None}
            for k in range(start, start + n)]  # fmt: skip


@pytest.fixture(scope="module")
def boltz_python() -> Path:
    python = CACHE_HOME / "boltz-venv-2.2.1" / "bin" / "python"
    if not (python.parent.parent / ".installed").is_file():
        pytest.skip(f"no boltz venv at {python.parent.parent}: make boltz-venv")
    return python


@pytest.fixture(scope="module")
def model_cache(boltz_python, tmp_path_factory) -> Path:
    """The fidelity tests' small random checkpoints and generated molecules, laid out as populate leaves a cache."""
    key = hashlib.sha256((FIDELITY / "small_boltz2.py").read_bytes()).hexdigest()[:12]
    checkpoints = CACHE_HOME / "boltz-fidelity-checkpoints" / key
    mols = CACHE_HOME / "boltz-fidelity-mols" / "v1"
    if not (checkpoints / "boltz2_conf.ckpt").is_file() or not (mols / "ALA.pkl").is_file():
        pytest.skip(
            "no fidelity checkpoints or molecules: run tests/integration/fidelity/test_fidelity_screen.py first"
        )
    cache = tmp_path_factory.mktemp("models") / "boltz2"
    cache.mkdir()
    for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt"):
        (cache / name).symlink_to(checkpoints / name)
    (cache / "mols").symlink_to(mols, target_is_directory=True)
    with tarfile.open(cache / "mols.tar", "w"):
        pass  # boltz checks only that it exists
    return cache


def timed_shard(root: Path, shard_ligands: list[dict], boltz_python: Path, cache: Path) -> dict[str, float]:
    """One screen-shard process over `shard_ligands`; seconds from its start to each marker and to its exit."""
    results = ResultsTarget(uri="pvc://results/bench", local_dir=str(root / "results"))
    write_slices(open_results_store(results), slice_ligands(shard_ligands, len(shard_ligands)), [])
    run = ScreenShardRun(target_file="target.yaml", ligand_chain="L", options=CPU_PREDICT_OPTIONS, shard_index=0,
                         cache_dir=str(cache), results=results)  # fmt: skip
    config = root / "config"
    config.mkdir(parents=True)
    (config / "target.yaml").write_text(yaml.safe_dump(TARGET))
    (config / "run.json").write_text(run.model_dump_json())
    env = {**os.environ, "BOLTZ_EXECUTABLE": str(boltz_python.parent / "boltz"), "BOLTZ_WORKER_ACCELERATOR": "cpu",
           "BOLTZ_WORK_DIR": str(root / "work"), "BOLTZ_WORKER_CPUS": str(CPUS), "HOME": str(root / "home")}  # fmt: skip
    argv = [sys.executable, "-m", "boltz_worker.cli", "screen-shard", "--run", str(config / "run.json"),
            "--termination-log", str(root / "termination-log")]  # fmt: skip
    started = time.monotonic()
    seen: dict[str, float] = {}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    tail = []
    for line in process.stdout:
        tail = [*tail[-40:], line]
        for name, marker in MARKERS.items():
            if marker in line and name not in seen:
                seen[name] = time.monotonic() - started
    _, status, usage = os.wait4(process.pid, 0)  # CPU time of the worker and every process it waited for (boltz's)
    process.returncode = os.waitstatus_to_exitcode(status)
    seen["exit"] = time.monotonic() - started
    seen["cpu"] = usage.ru_utime + usage.ru_stime
    seen["load"] = os.getloadavg()[0]
    assert process.returncode == 0, "".join(tail)
    return seen


def test_one_shard_of_n_ligands_against_n_single_runs(boltz_python, model_cache, tmp_path):
    shards = {n: timed_shard(tmp_path / f"shard-{n}", ligands(n), boltz_python, model_cache) for n in SIZES}
    singles = [timed_shard(tmp_path / f"single-{k}", ligands(1, start=100 + k), boltz_python, model_cache)
               for k in range(SINGLES)]  # fmt: skip
    print(f"\nscreen shard on CPU ({CPUS} CPUs), real boltz 2.2.1, small random checkpoints, {len(KINASE)}-residue "
          "target, affinity on")  # fmt: skip
    print("wall seconds from the worker's start; CPU seconds of the worker and boltz (user + system, all processes);")
    print("load: the machine's 1-minute load average at the end (other sessions' tests share its CPUs)")
    print("  N   wall s   CPU s  start+imports  processing  structure step  affinity step  load")
    for n, t in shards.items():
        structure = t["affinity"] - t["processed"]
        print(f"{n:3d} {t['exit']:8.1f} {t['cpu']:7.1f} {t['started']:14.1f} {t['processed'] - t['started']:11.1f} "
              f"{structure:15.1f} {t['exit'] - t['affinity']:14.1f} {t['load']:5.1f}")  # fmt: skip
    wall = sum(s["exit"] for s in singles) / len(singles)
    cpu = sum(s["cpu"] for s in singles) / len(singles)
    print(f"single runs (1 ligand each, {len(singles)} of them): {wall:.1f} s wall, {cpu:.1f} s CPU each; start+imports "
          f"{sum(s['started'] for s in singles) / len(singles):.1f} s")  # fmt: skip
    small, large = min(SIZES), max(SIZES)
    if large > small:
        for what in ("exit", "cpu"):
            per_ligand = (shards[large][what] - shards[small][what]) / (large - small)
            fixed = shards[small][what] - small * per_ligand
            name = "wall" if what == "exit" else "CPU"
            print(f"{name}: per ligand (slope {small}..{large}) {per_ligand:.1f} s; fixed cost {fixed:.1f} s")
        for n in SIZES:
            print(f"N={n}: one shard {shards[n]['exit']:.1f} s wall / {shards[n]['cpu']:.1f} s CPU vs {n} single runs "
                  f"{n * wall:.1f} s wall / {n * cpu:.1f} s CPU")  # fmt: skip


LOAD_SCRIPT = """
import json, sys, time
from dataclasses import asdict
started = time.monotonic()
import boltz.main as m
from boltz.model.models.boltz2 import Boltz2
figures = {"import boltz.main": time.monotonic() - started}
for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt"):
    started = time.monotonic()
    model = Boltz2.load_from_checkpoint(
        f"{sys.argv[1]}/{name}", strict=True, map_location="cpu", ema=False, use_kernels=False,
        predict_args={"recycling_steps": 0, "sampling_steps": 2, "diffusion_samples": 1, "max_parallel_samples": 1,
                      "write_confidence_summary": True, "write_full_pae": False, "write_full_pde": False},
        diffusion_process_args=asdict(m.Boltz2DiffusionParams()), pairformer_args=asdict(m.PairformerArgsV2()),
        msa_args=asdict(m.MSAModuleArgs(use_paired_feature=True)), steering_args=asdict(m.BoltzSteeringParams()))
    figures[f"load {name}"] = time.monotonic() - started
print(json.dumps(figures))
"""


def test_the_fixed_cost_s_parts_imports_and_model_loads(boltz_python, model_cache):
    """What boltz pays before its first input, as `boltz predict` does it (boltz/main.py predict): its imports and
    Boltz2.load_from_checkpoint of each checkpoint (here the small random ones; the real ones are far larger)."""
    proc = subprocess.run([str(boltz_python), "-c", LOAD_SCRIPT, str(model_cache)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    sizes = {n: (model_cache / n).resolve().stat().st_size / 1e6 for n in ("boltz2_conf.ckpt", "boltz2_aff.ckpt")}
    print(f"\nfixed cost parts: {', '.join(f'{k} {v:.1f} s' for k, v in figures.items())} (checkpoints "
          f"{', '.join(f'{k} {v:.0f} MB' for k, v in sizes.items())})")  # fmt: skip

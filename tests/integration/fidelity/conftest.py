"""Boltz fidelity: what the operator and the worker produce, checked by the real boltz 2.2.1.

boltz cannot live in the project's venv (it pins click==8.1.7 and numpy<2), so it gets a venv of its own, built
once and cached by hack/boltz-venv.sh. These tests run in the project venv, build their inputs with the project's
own code (render_boltz_input, the ConfigMap builder, build_boltz_argv), and hand them to boltz_side.py, run by the
boltz venv's python. When that venv cannot be built (no package index), every test here is skipped, saying why.

Environment:
  BOLTZ_CACHE_HOME         cache root (default ~/.cache/boltz-operator): the venv, generated molecules
  BOLTZ_FIDELITY_BUILD=0   never build the venv here: skip when it is not built already
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from support.fidelity import BOLTZGEN_VERSION, CACHE_HOME

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BOLTZ_SIDE = HERE / "boltz_side.py"
VENV_SCRIPT = REPO / "hack" / "boltz-venv.sh"
BOLTZ_VERSION = "2.2.1"

# Residues boltz's parser loads for any polymer: const.canonical_tokens (load_canonicals) and the nucleotides.
CANONICAL_CODES = (
    "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL UNK A G C U N DA DG DC DT DN"
).split()


def pytest_configure(config):
    config.addinivalue_line("markers", "fidelity: checked by the real boltz in its own venv (hack/boltz-venv.sh)")


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.fidelity)


class BoltzSide:
    """boltz_side.py run by the boltz venv's python: one JSON answer per call."""

    def __init__(self, python: Path):
        self.python = python
        self.bin = python.parent

    def __call__(self, command: str, *args: str | Path, timeout: float = 900, cwd: Path = HERE) -> dict | list:
        """cwd: where relative paths in the inputs resolve (boltz resolves them against the current directory)."""
        argv = [str(self.python), str(BOLTZ_SIDE), command, *map(str, args)]
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONDONTWRITEBYTECODE": "1"}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
        if proc.returncode != 0:
            raise AssertionError(f"boltz_side {command} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def boltz(self, *args: str | Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
        """The real `boltz` command line."""
        return subprocess.run(
            [str(self.bin / "boltz"), *map(str, args)],
            capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ),
        )  # fmt: skip


@pytest.fixture(scope="session")
def boltz_python() -> Path:
    """The boltz venv's python, building the venv if needed (cached; minutes the first time)."""
    expected = CACHE_HOME / f"boltz-venv-{BOLTZ_VERSION}" / "bin" / "python"
    if os.environ.get("BOLTZ_FIDELITY_BUILD", "1") == "0":
        if not (expected.parent.parent / ".installed").is_file():
            pytest.skip(f"no boltz venv at {expected.parent.parent} and BOLTZ_FIDELITY_BUILD=0 (make boltz-venv)")
        return expected
    sys.stderr.write(f"\nfidelity: {VENV_SCRIPT.relative_to(REPO)} (builds the boltz venv once, then cached)\n")
    try:
        proc = subprocess.run([str(VENV_SCRIPT)], capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        pytest.skip("hack/boltz-venv.sh took over an hour: is the package index reachable?")
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        pytest.skip(f"the boltz venv could not be built (hack/boltz-venv.sh exited {proc.returncode}): {tail}")
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def boltz_side(boltz_python) -> BoltzSide:
    return BoltzSide(boltz_python)


def _mols_format() -> int:
    match = re.search(r"^MOLS_FORMAT = (\d+)", BOLTZ_SIDE.read_text(), re.M)
    assert match, "boltz_side.py lost MOLS_FORMAT"
    return int(match.group(1))


@pytest.fixture(scope="session")
def mol_dir(boltz_side) -> Path:
    """Canonical residue molecules (mols/<CCD>.pkl) generated offline from biotite's CCD, cached across runs."""
    directory = CACHE_HOME / "boltz-fidelity-mols" / f"v{_mols_format()}"
    boltz_side("mols", directory, *CANONICAL_CODES)
    return directory


@pytest.fixture(scope="session")
def ensure_mols(boltz_side, mol_dir):
    """Add CCD components (ligands, modified residues) to the molecule directory."""

    def ensure(*codes: str) -> Path:
        missing = [c for c in codes if not (mol_dir / f"{c}.pkl").is_file()]
        if missing:
            boltz_side("mols", mol_dir, *missing)
        return mol_dir

    return ensure


@pytest.fixture(scope="session")
def checkpoints(boltz_side) -> Path:
    """The small random checkpoints, cached across runs by the content of the script that makes them."""
    key = hashlib.sha256((HERE / "small_boltz2.py").read_bytes()).hexdigest()[:12]
    directory = CACHE_HOME / "boltz-fidelity-checkpoints" / key
    if not all((directory / f).is_file() for f in ("boltz2_conf.ckpt", "boltz2_aff.ckpt")):
        boltz_side("checkpoints", directory)
    return directory


@pytest.fixture(scope="session")
def model_cache(checkpoints, ensure_mols, tmp_path_factory) -> Path:
    """<models>/boltz2 as populate leaves it: both checkpoints, mols/ and mols.tar (boltz checks it exists)."""
    mol_dir = ensure_mols("SAH")
    cache = tmp_path_factory.mktemp("models") / "boltz2"
    cache.mkdir()
    for name in ("boltz2_conf.ckpt", "boltz2_aff.ckpt"):
        shutil.copyfile(checkpoints / name, cache / name)
    shutil.copytree(mol_dir, cache / "mols")
    with tarfile.open(cache / "mols.tar", "w") as tar:
        tar.add(cache / "mols", arcname="mols")
    return cache


BOLTZGEN_SIDE = HERE / "boltzgen_side.py"
BOLTZGEN_VENV_SCRIPT = REPO / "hack" / "boltzgen-venv.sh"
BOLTZGEN_MOLS_FORMAT = 1  # bump when boltz_side.ccd_mol changes what it writes
TARGET_LIGANDS = ["SO4", "MPD"]  # boltzgen parses the whole file, ligands included, before it selects chains
CCD_LIGANDS = ["SAH"]

CI = bool(os.environ.get("CI"))


# ---------------------------------------------------------------------------------------------- the boltzgen venv


def _unavailable(reason: str):
    if CI:
        pytest.fail(f"{reason} (on CI the boltzgen venv must build: hack/boltzgen-venv.sh)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def boltzgen_python() -> Path:
    """The boltzgen venv's python, building it (and the boltz venv it borrows torch from) if needed."""
    venv = CACHE_HOME / f"boltzgen-venv-{BOLTZGEN_VERSION}"
    if os.environ.get("BOLTZ_FIDELITY_BUILD", "1") == "0":
        if not (venv / ".installed").is_file():
            pytest.skip(f"no boltzgen venv at {venv} and BOLTZ_FIDELITY_BUILD=0 (make boltzgen-venv)")
        return venv / "bin" / "python"
    sys.stderr.write(
        f"\nfidelity: {BOLTZGEN_VENV_SCRIPT.relative_to(REPO)} (builds the boltzgen venv once, then cached)\n"
    )
    try:
        proc = subprocess.run([str(BOLTZGEN_VENV_SCRIPT)], capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        _unavailable("hack/boltzgen-venv.sh took over an hour: is the package index reachable?")
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        _unavailable(f"the boltzgen venv could not be built (hack/boltzgen-venv.sh exited {proc.returncode}): {tail}")
    return Path(proc.stdout.strip().splitlines()[-1])


class BoltzGenSide:
    """boltzgen_side.py run by the boltzgen venv's python: one JSON answer per call."""

    def __init__(self, python: Path):
        self.python = python

    def __call__(self, command: str, *args: str | Path, timeout: float = 1800, env: dict | None = None) -> dict:
        argv = [str(self.python), str(BOLTZGEN_SIDE), command, *map(str, args)]
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE)
        if proc.returncode != 0:
            raise AssertionError(f"boltzgen_side {command} failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def boltzgen_side(boltzgen_python) -> BoltzGenSide:
    return BoltzGenSide(boltzgen_python)


@pytest.fixture(scope="session")
def boltzgen_mols(boltzgen_side) -> Path:
    """Stands in for mols.zip: <CODE>.pkl generated offline from biotite's CCD, cached across runs."""
    directory = CACHE_HOME / "boltzgen-fidelity-mols" / f"v{BOLTZGEN_MOLS_FORMAT}"
    boltzgen_side("mols", directory, *CANONICAL_CODES, *TARGET_LIGANDS, *CCD_LIGANDS)
    return directory

"""Helpers shared by the fidelity tests (project venv side)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

CACHE_HOME = Path(os.environ.get("BOLTZ_CACHE_HOME") or Path.home() / ".cache" / "boltz-operator")
REPO = Path(__file__).resolve().parents[2]
BOLTZGEN_VERSION = "0.3.2"
TARGET = REPO / "tests" / "fixtures" / "structures" / "3ch4.cif"  # PDB 3CH4, trimmed (see the boltzgen fidelity test)


def a3m(sequence: str) -> str:
    """A small A3M alignment whose query is `sequence`: a substitution, a gap, an insertion (lower case)."""
    mutant = sequence[:3] + "W" + sequence[4:-2] + "-" + sequence[-1]
    insertion = sequence[:5] + "ka" + sequence[5:]
    return f">101\n{sequence}\n>UniRef100_X|hit 1\n{mutant}\n>UniRef100_Y|hit 2\n{insertion}\n"


def msa_csv(sequence: str) -> str:
    """The CSV MSA boltz reads (columns key, sequence; the key pairs rows across chains)."""
    mutant = sequence[:2] + "A" + sequence[3:]
    return f"key,sequence\n1,{sequence}\n2,{mutant}\n"


def write_msas(doc: dict) -> None:
    """An MSA file at every path the rendered document names, for that chain's sequence."""
    for item in doc["sequences"]:
        body = item.get("protein", {})
        msa = body.get("msa")
        if isinstance(msa, str) and msa != "empty":
            Path(msa).parent.mkdir(parents=True, exist_ok=True)
            Path(msa).write_text(msa_csv(body["sequence"]) if msa.endswith(".csv") else a3m(body["sequence"]))


def relocate(value, old: str, new: str):
    """`value` with every string path under `old` moved under `new`."""
    if isinstance(value, dict):
        return {k: relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith(old + "/"):
        return new + value[len(old) :]
    return value


CPU_OPTIONS = {  # as small as boltz allows: the model is random, only the path through boltz matters
    "diffusionSamples": 1, "recyclingSteps": 0, "samplingSteps": 2, "useKernels": False,
    "affinity": {"samplingSteps": 2, "diffusionSamples": 1},
}  # fmt: skip


EXAMPLE_RESIDUES = 30  # the whole 327-residue kinase takes over 10 minutes on 2 CPUs, even with this model


def example_spec() -> dict:
    """examples/prediction.yaml as a user applies it, with CPU-sized options and the kinase cut short."""
    spec = yaml.safe_load((REPO / "examples" / "prediction.yaml").read_text())["spec"]
    protein = spec["sequences"][0]["protein"]
    protein["sequence"] = protein["sequence"][:EXAMPLE_RESIDUES]
    return {**spec, "options": {**spec.get("options", {}), **CPU_OPTIONS}}

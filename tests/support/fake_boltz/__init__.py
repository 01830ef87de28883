"""The fake `boltz` executable (see fake_boltz.py) and how to point the worker at it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_BOLTZ = Path(__file__).with_name("fake_boltz.py")

# The keys of boltz 2.2.1's confidence_<id>_model_<k>.json and affinity_<id>.json: the fake writes them, and the
# fidelity test checks that the real boltz does too.
CONFIDENCE_KEYS = {
    "confidence_score", "ptm", "iptm", "ligand_iptm", "protein_iptm", "complex_plddt", "complex_iplddt",
    "complex_pde", "complex_ipde", "chains_ptm", "pair_chains_iptm",
}  # fmt: skip
AFFINITY_KEYS = {
    "affinity_pred_value", "affinity_probability_binary", "affinity_pred_value1", "affinity_probability_binary1",
    "affinity_pred_value2", "affinity_probability_binary2",
}  # fmt: skip


def fake_boltz_command() -> str:
    """A value for $BOLTZ_EXECUTABLE: this interpreter running fake_boltz.py."""
    return shlex.join([sys.executable, str(FAKE_BOLTZ)])

"""A campaign's GPU-hour estimate, written to its status before anything starts (a policy of its own)."""

from __future__ import annotations

import re

from boltz_operator.api import BoltzGenCampaignSpec
from boltz_operator.api.campaign import CampaignEstimate

_DESIGNED = re.compile(r"([0-9]+)(?:\.\.([0-9]+))?|[A-Z]")
REFERENCE_DESIGN_RESIDUES = 100


def designed_residues(spec: BoltzGenCampaignSpec) -> float:
    """Mean number of designed residues per design: numbers (and N..M ranges, at their midpoint) in protein
    sequences. Residues designed inside structure files are not known without reading the file: not counted."""
    total = 0.0
    for entity in spec.design_spec.entities:
        protein = entity.protein
        if protein is None or not any(c.isdigit() for c in protein.sequence):
            continue
        for match in _DESIGNED.finditer(protein.sequence):
            low, high = match.group(1), match.group(2)
            if low is not None:
                total += (int(low) + int(high or low)) / 2 * len(protein.ids)
    return total


def gpu_hour_estimate(spec: BoltzGenCampaignSpec, seconds_per_design: float) -> CampaignEstimate:
    residues = designed_residues(spec)
    scale = (residues or REFERENCE_DESIGN_RESIDUES) / REFERENCE_DESIGN_RESIDUES
    hours = spec.num_designs * seconds_per_design * scale / 3600
    length = (
        f"{residues:g} designed residues per design (range midpoints)"
        if residues
        else f"no designed protein length in the spec: {REFERENCE_DESIGN_RESIDUES} assumed"
    )
    basis = (
        f"{seconds_per_design:g} GPU-seconds per design of {REFERENCE_DESIGN_RESIDUES} designed residues "
        f"(chart value workers.boltzgenGpuSecondsPerDesign; the default is the ~1.5 h per 100 designs on one A10G "
        f"of the SageMaker pipeline this replaces), scaled linearly by length: {length}; filtering, and inverse-fold "
        f"sequences beyond the first (inverseFoldNumSequences), not counted"
    )
    return CampaignEstimate(gpu_hours=round(hours, 1), basis=basis)

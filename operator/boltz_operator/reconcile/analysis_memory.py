"""A campaign's AnalysisMemory condition: whether resources.memory holds BoltzGen's analysis pool (a policy of its
own)."""

from __future__ import annotations

import math

from kubernetes.utils.quantity import parse_quantity

import boltz_contract as contract
from boltz_operator.api import BoltzGenCampaignSpec, BoltzGenCampaignStatus
from boltz_operator.api.campaign import CampaignConditionType as Cond
from boltz_operator.conditions import set_condition, updated
from boltz_operator.config import OperatorConfig
from boltz_operator.reconcile.status import Outcome


def analysis_memory_shortfall(spec: BoltzGenCampaignSpec, config: OperatorConfig) -> str | None:
    """Why resources.memory cannot hold BoltzGen's analysis pool (one process per CPU, ANALYSIS_PROCESS_BYTES each),
    or None when it can. CPUs as the worker counts them: the limit rounded up (boltz_command.container_cpus); the
    worker then runs only as many processes as the memory holds (boltzgen_command.analysis_processes)."""
    cpu, memory = spec.resources.cpu or config.default_cpu, spec.resources.memory or config.default_memory
    processes = max(1, math.ceil(parse_quantity(cpu)))
    have, need = float(parse_quantity(memory)), processes * contract.ANALYSIS_PROCESS_BYTES
    if have >= need:
        return None
    held = int(have // contract.ANALYSIS_PROCESS_BYTES)
    effect = (
        f"the shards run {held} analysis processes instead of {processes}, and their analysis takes longer"
        if held
        else "not even one fits: the shards will likely fail as HostOutOfMemory"
    )
    return (
        f"resources.memory {memory} is below what BoltzGen's analysis step needs with resources.cpu {cpu}: one "
        f"process per CPU, {processes} x about {contract.ANALYSIS_PROCESS_BYTES / 1e9:.1f} GB = "
        f"{need / 1e9:.1f} GB ({math.ceil(need / 2**30)}Gi); {effect}. Raise resources.memory or lower "
        f"resources.cpu"
    )


def analysis_memory_condition(
    status: BoltzGenCampaignStatus,
    spec: BoltzGenCampaignSpec,
    config: OperatorConfig,
    generation,
    now,
    outcome: Outcome,
) -> BoltzGenCampaignStatus:
    """The AnalysisMemory condition: False (and a Warning Event when it turns so) while resources cannot hold the
    analysis pool; True once fixed. Absent on campaigns that never lacked memory (resources are mutable)."""
    short = analysis_memory_shortfall(spec, config)
    previous = next((c for c in status.conditions if c.type == Cond.ANALYSIS_MEMORY.value), None)
    if short is None and previous is None:
        return status
    if short is not None and (previous is None or previous.status.value != "False" or previous.message != short):
        outcome.events.append(("Warning", "AnalysisMemoryShort", short))
    conditions = (
        set_condition(
            status.conditions, Cond.ANALYSIS_MEMORY.value, False, "AnalysisMemoryShort", short, generation, now
        )
        if short
        else set_condition(
            status.conditions,
            Cond.ANALYSIS_MEMORY.value,
            True,
            "Sufficient",
            "resources.memory holds one BoltzGen analysis process per CPU",
            generation,
            now,
        )
    )
    return updated(status, {"conditions": conditions})

"""The CPU steps before and after a run's GPUs, as predictions and screens share them: where the results and the
MSAs go, the MSA gate's word on a prepare about to start, and what a finished CPU Job (prepare, a screen's rank)
says. Each kind's reconciler keeps its own phases, messages and children."""

from __future__ import annotations

from dataclasses import dataclass

from boltz_contract import RunSummary
from boltz_contract.msa import MsaRequest, msa_request_of
from boltz_operator.api.boltz_input import MsaServer
from boltz_operator.api.common import ResultsStore
from boltz_operator.builders.common import WORKER_CONTAINER, OwnerRef
from boltz_operator.builders.msa_store import MsaStorePlacement, place_msa_store
from boltz_operator.builders.results import ResultsPlacement, place_results
from boltz_operator.kube import TerminatedWorker
from boltz_operator.reconcile.jobs import JobFacts, JobState, describe_failure
from boltz_operator.reconcile.msa_gate import Admission, MsaGateView, Owner, Wait
from boltz_operator.reconcile.status import PassContext

PREPARE_TIMEOUT_SETTING = "the chart value prepare.timeoutSeconds"
PREPARE_MEMORY_SETTING = "the chart value prepare.memory"


@dataclass(frozen=True)
class Placed:
    """Where a run's results go, the MSAs its input needs from a server (None: none) and the store they are kept in
    (None when none is needed)."""

    results: ResultsPlacement
    request: MsaRequest | None
    store: MsaStorePlacement | None

    @property
    def msa_uri(self) -> str | None:
        """The MSA's place in its store: what the MSA gate keys on (one MSA in two stores is two keys)."""
        return self.store.target.key_uri(self.request.key) if self.store and self.request else None


def place(ctx: PassContext, doc: dict, msa_server: MsaServer | None, results: ResultsStore | None) -> Placed:
    """The placements of a run whose rendered Boltz input is `doc`: its results store (`results`, else the
    operator's default) and, when `doc` needs MSAs from `msa_server`, the MSA store (the server's own, the chart's
    msaServer.store, else the results store's msas/ prefix). Raises builders.results.NoResultsStore when neither
    the spec nor the operator names a results store."""
    ref, config = ctx.ref, ctx.config
    request = msa_request_of(
        doc, msa_server.url if msa_server else None, msa_server.pairing_strategy.value if msa_server else "greedy"
    )
    placed_results = place_results(results, config.default_results, ref.namespace, ref.name, ref.uid)
    store = (
        place_msa_store(
            msa_server.store if msa_server else None,
            config.default_msa_store,
            results,
            config.default_results,
            ref.namespace,
        )  # fmt: skip
        if request
        else None
    )
    return Placed(placed_results, request, store)


def admit(owner: Owner, placed: Placed, msa: MsaGateView | None) -> Admission | Wait:
    """The MSA gate's word on starting `owner`'s prepare now: Wait (another prepare fetches the same MSA, or the
    servers' concurrency limit is reached), else Admission (fetch: it may call the server). Without a gate (unit
    tests of other steps) or without an MSA to fetch, it may start at once."""
    if msa is not None and placed.msa_uri is not None:
        return msa.admit(owner, placed.msa_uri)
    return Admission(fetch=placed.request is not None)


def finished_prepare(
    ctx: PassContext, facts: JobFacts, owner: Owner, placed: Placed, msa: MsaGateView | None
) -> tuple[RunSummary | None, tuple[str, str] | None]:
    """A finished prepare Job (`facts`): its worker's summary, and (reason, message) when it failed. Frees the MSA
    gate's hold on its key (stored when it succeeded) so that the runs waiting on it decide again."""
    worker = ctx.kube.last_terminated_worker(ctx.ref.namespace, facts.name, WORKER_CONTAINER)
    if msa is not None and placed.msa_uri is not None:
        msa.release(owner, placed.msa_uri, facts.state == JobState.SUCCEEDED)
    failure = cpu_step_failure(ctx, facts, worker) if facts.state == JobState.FAILED else None
    return (worker.summary if worker else None), failure


def cpu_step_failure(ctx: PassContext, facts: JobFacts, worker: TerminatedWorker | None) -> tuple[str, str]:
    """(reason, message) of a failed CPU step (prepare, a screen's rank), whose time and memory limits are the
    chart's prepare.* values."""
    return describe_failure(
        facts,
        worker.exit_code if worker else None,
        worker.summary if worker else None,
        ctx.config.prepare_timeout_seconds,
        worker.reason if worker else None,
        ctx.config.prepare_memory,
        PREPARE_MEMORY_SETTING,
        PREPARE_TIMEOUT_SETTING,
    )


def owner_of(ref: OwnerRef) -> Owner:
    """The MSA gate's name for a run."""
    return (ref.kind, ref.namespace, ref.name)

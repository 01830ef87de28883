"""One registration per resource kind: what a reconcile pass needs to know about it.

A pass (handlers._pass) is the same for every kind: take the object's lock, overlay the status this process last
wrote, look up its model cache and its Jobs (one per step, by deterministic name) in the indices, call the kind's
reconciler, then report and remember. A new kind is a new registration here and a reconciler of its own, not a
copied branch of the handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from boltz_operator.api import (
    CAMPAIGN_RESOURCE,
    MODEL_CACHE_RESOURCE,
    PREDICTION_RESOURCE,
    SCREEN_RESOURCE,
    CampaignPhase,
    PredictionPhase,
    ResourceKind,
    ScreenPhase,
)
from boltz_operator.builders import campaign as campaign_builders
from boltz_operator.builders import modelcache as cache_builders
from boltz_operator.builders import prediction as prediction_builders
from boltz_operator.builders import prepare as prepare_builders
from boltz_operator.builders import screen as screen_builders
from boltz_operator.builders.common import OwnerRef
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import KubeApi
from boltz_operator.reconcile.campaign import reconcile_campaign
from boltz_operator.reconcile.modelcache import reconcile_model_cache
from boltz_operator.reconcile.msa_gate import MsaGateView
from boltz_operator.reconcile.prediction import reconcile_prediction
from boltz_operator.reconcile.screen import reconcile_screen
from boltz_operator.reconcile.status import Outcome


@dataclass(frozen=True)
class PassInput:
    """What a pass observed: the object (with this process's last status write), its model cache (None when the
    kind has none or it does not exist), its Jobs by step (None: not in the index), and the steps whose Job this
    process created but the index does not show yet."""

    body: dict
    cache: dict | None
    jobs: Mapping[str, dict | None]
    in_flight: frozenset[str]
    kube: KubeApi
    config: OperatorConfig
    msa: MsaGateView | None = None  # the MSA gate, for kinds that fetch MSAs (predictions)


@dataclass(frozen=True)
class Registration:
    kind: ResourceKind  # the API's description of the kind (api/): its kind and plural names among the rest
    steps: tuple[str, ...]  # one Job per step
    job_name: Callable[[Mapping, str], str]  # (metadata, step) -> the step's Job name
    reconcile: Callable[[PassInput], Outcome]
    # Runs on a model cache (spec.modelCache): re-run when the cache changes while in one of these phases
    # (None: no status yet). Empty: the kind uses no cache.
    waits_on_cache_in: tuple[str | None, ...] = ()

    @property
    def uses_cache(self) -> bool:
        return bool(self.waits_on_cache_in)


_PREDICTION_JOB_NAMES = {
    prepare_builders.COMPONENT: prepare_builders.job_name,
    prediction_builders.COMPONENT: prediction_builders.job_name,
}

PREDICTION = Registration(
    kind=PREDICTION_RESOURCE,
    steps=(prepare_builders.COMPONENT, prediction_builders.COMPONENT),
    job_name=lambda meta, step: _PREDICTION_JOB_NAMES[step](meta["name"]),
    reconcile=lambda p: reconcile_prediction(
        p.body,
        p.cache,
        p.jobs[prediction_builders.COMPONENT],
        p.kube,
        p.config,
        prepare_job=p.jobs[prepare_builders.COMPONENT],
        msa=p.msa,
        in_flight=p.in_flight,
    ),
    waits_on_cache_in=(None, PredictionPhase.WAITING_FOR_MODEL_CACHE.value),
)

CAMPAIGN = Registration(
    kind=CAMPAIGN_RESOURCE,
    steps=(campaign_builders.DESIGN, campaign_builders.FILTER),
    job_name=lambda meta, step: campaign_builders.job_name(meta["name"], step),
    reconcile=lambda p: reconcile_campaign(
        p.body,
        p.cache,
        p.jobs[campaign_builders.DESIGN],
        p.jobs[campaign_builders.FILTER],
        p.kube,
        p.config,
        in_flight=p.in_flight,
    ),
    # Designing too: a campaign whose shards are done may wait for the cache to run its filter Job.
    waits_on_cache_in=(None, CampaignPhase.WAITING_FOR_MODEL_CACHE.value, CampaignPhase.DESIGNING.value),
)

MODEL_CACHE = Registration(
    kind=MODEL_CACHE_RESOURCE,
    steps=(cache_builders.COMPONENT,),
    job_name=lambda meta, _step: cache_builders.job_name(OwnerRef.of(MODEL_CACHE_RESOURCE.kind, meta)),
    reconcile=lambda p: reconcile_model_cache(p.body, p.jobs[cache_builders.COMPONENT], p.kube, p.config),
)

SCREEN = Registration(
    kind=SCREEN_RESOURCE,
    steps=(screen_builders.PREPARE, screen_builders.SHARDS, screen_builders.RANK),
    job_name=lambda meta, step: screen_builders.job_name(meta["name"], step),
    reconcile=lambda p: reconcile_screen(
        p.body, p.cache, dict(p.jobs), p.kube, p.config, msa=p.msa, in_flight=p.in_flight
    ),
    waits_on_cache_in=(None, ScreenPhase.WAITING_FOR_MODEL_CACHE.value),
)

BY_KIND: dict[str, Registration] = {r.kind.kind: r for r in (PREDICTION, CAMPAIGN, MODEL_CACHE, SCREEN)}

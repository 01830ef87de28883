"""Pydantic models of the custom resources (the source of truth for the CRDs in crds/)."""

from .campaign import (
    CAMPAIGN_RESOURCE,
    BoltzGenCampaign,
    BoltzGenCampaignSpec,
    BoltzGenCampaignStatus,
    CampaignConditionType,
    CampaignPhase,
)
from .common import API_VERSION, GROUP, VERSION, Condition, ConditionStatus, ResourceKind
from .modelcache import (
    MODEL_CACHE_RESOURCE,
    BoltzModelCache,
    BoltzModelCacheSpec,
    BoltzModelCacheStatus,
    ModelCacheConditionType,
    ModelCachePhase,
)
from .prediction import (
    PREDICTION_RESOURCE,
    BoltzPrediction,
    BoltzPredictionSpec,
    BoltzPredictionStatus,
    PredictionConditionType,
    PredictionPhase,
)
from .screen import SCREEN_RESOURCE, BoltzScreen, BoltzScreenSpec, BoltzScreenStatus, ScreenConditionType, ScreenPhase

# The kinds served (crds/, the chart).
RESOURCES: tuple[ResourceKind, ...] = (MODEL_CACHE_RESOURCE, PREDICTION_RESOURCE, CAMPAIGN_RESOURCE, SCREEN_RESOURCE)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "RESOURCES",
    "Condition",
    "ConditionStatus",
    "ResourceKind",
    "MODEL_CACHE_RESOURCE",
    "BoltzModelCache",
    "BoltzModelCacheSpec",
    "BoltzModelCacheStatus",
    "ModelCacheConditionType",
    "ModelCachePhase",
    "PREDICTION_RESOURCE",
    "BoltzPrediction",
    "BoltzPredictionSpec",
    "BoltzPredictionStatus",
    "PredictionConditionType",
    "PredictionPhase",
    "CAMPAIGN_RESOURCE",
    "BoltzGenCampaign",
    "BoltzGenCampaignSpec",
    "BoltzGenCampaignStatus",
    "CampaignConditionType",
    "CampaignPhase",
    "SCREEN_RESOURCE",
    "BoltzScreen",
    "BoltzScreenSpec",
    "BoltzScreenStatus",
    "ScreenConditionType",
    "ScreenPhase",
]

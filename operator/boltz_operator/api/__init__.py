"""Pydantic models of the custom resources (the source of truth for the CRDs in crds/)."""

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

RESOURCES: tuple[ResourceKind, ...] = (MODEL_CACHE_RESOURCE, PREDICTION_RESOURCE)

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
]

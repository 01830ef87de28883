"""Object builders for unit tests, in the wrapper style of kubernetes-sigs/jobset's pkg/util/testing/wrappers.go:
start from a sensible object, change what the test is about, take the body:

    Resource.prediction("egfr").spec(retries=-1).generation(2).obj()
    Resource.model_cache("default").phase("Ready").obj()
    JobBody("egfr-predict").conditions(COMPLETE).status(succeeded=1).obj()

Bodies are camelCase dicts, as the watch delivers them to the reconcilers.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from boltz_operator.api import API_VERSION
from support.manifests import EXAMPLES


class Resource:
    """One of the operator's own resources (a prediction, a campaign, a model cache) in namespace `lab`."""

    def __init__(self, kind: str, name: str, spec: dict, uid: str):
        self._body: dict[str, Any] = {
            "apiVersion": API_VERSION, "kind": kind,
            "metadata": {"namespace": "lab", "name": name, "uid": uid, "generation": 1},
            "spec": spec, "status": {},
        }  # fmt: skip

    @classmethod
    def prediction(cls, name: str = "egfr") -> Resource:
        """examples/prediction.yaml, with an S3 results store."""
        spec = yaml.safe_load((EXAMPLES / "prediction.yaml").read_text())["spec"]
        return cls("BoltzPrediction", name, {**spec, "results": {"s3": {"uri": "s3://bucket/base"}}}, "u1")

    @classmethod
    def campaign(cls, name: str = "pdl1") -> Resource:
        """examples/campaign.yaml (2000 designs in 20 shards), with an S3 results store."""
        spec = yaml.safe_load((EXAMPLES / "campaign.yaml").read_text())["spec"]
        return cls("BoltzGenCampaign", name, {**spec, "results": {"s3": {"uri": "s3://bucket/campaigns"}}}, "u1")

    @classmethod
    def model_cache(cls, name: str = "default", bundles: tuple[str, ...] | None = None) -> Resource:
        spec: dict[str, Any] = {"source": {"huggingFace": {}}}
        if bundles is not None:
            spec["bundles"] = list(bundles)
        return cls("BoltzModelCache", name, spec, "c1")

    def spec(self, **changes: Any) -> Resource:
        self._body["spec"].update(copy.deepcopy(changes))
        return self

    def generation(self, generation: int) -> Resource:
        self._body["metadata"]["generation"] = generation
        return self

    def status(self, status: dict | None = None, **fields: Any) -> Resource:
        self._body["status"] = {**(status or {}), **fields}
        return self

    def phase(self, phase: str | None, message: str | None = None, claim: str | None = None) -> Resource:
        """A model cache's phase (None: no status yet), with its claim (`<name>-models` unless given) and message."""
        if phase is None:
            return self.status({})
        status = {"phase": phase, "claimName": claim or f"{self._body['metadata']['name']}-models"}
        return self.status(status, **({"message": message} if message else {}))

    def obj(self) -> dict:
        return copy.deepcopy(self._body)


class JobBody:
    """A Job as the watch delivers it: its name, spec.suspend and status."""

    def __init__(self, name: str):
        self._body: dict[str, Any] = {
            "metadata": {"name": name},
            "spec": {"suspend": False},
            "status": {"conditions": []},
        }

    def conditions(self, conditions: list[dict] | None) -> JobBody:
        self._body["status"]["conditions"] = list(conditions or [])
        return self

    def suspended(self, suspend: bool = True) -> JobBody:
        self._body["spec"]["suspend"] = suspend
        return self

    def status(self, **fields: Any) -> JobBody:
        self._body["status"].update(fields)
        return self

    def obj(self) -> dict:
        return copy.deepcopy(self._body)


COMPLETE = [{"type": "Complete", "status": "True"}]


def failed(reason: str, at: str = "2026-11-23T12:30:00Z") -> list[dict]:
    """A Job's Failed condition with `reason` (BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy, ...)."""
    return [{"type": "Failed", "status": "True", "reason": reason, "lastTransitionTime": at}]

"""Operator configuration, from environment variables (the Helm chart sets them from values)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from boltz_operator.api.common import TaintEffect, Toleration, TolerationOperator

ENV_PREFIX = "BOLTZ_OPERATOR_"


class DefaultResultsStore(BaseModel):
    """Where results go when a resource names no store of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    s3_uri: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    s3_credentials_secret: str | None = None
    pvc_claim_name: str | None = None
    pvc_sub_path: str | None = None


class DefaultMsaStore(DefaultResultsStore):
    """Where MSAs go when a prediction's msaServer names no store of its own (same fields as the results store).
    Unset: the results store's (the resource's own, else the default) `msas/` prefix or folder."""


class OperatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    worker_image: str = Field(
        "ghcr.io/boltz-operator/worker-boltz:0.1.0", description="Image of `boltz-worker` with boltz."
    )
    boltzgen_worker_image: str = Field(
        "ghcr.io/boltz-operator/worker-boltzgen:0.1.0",
        description="Image of `boltz-worker` with boltzgen (campaign shards and filter).",
    )
    image_pull_policy: str = "IfNotPresent"
    # Worker pods never mount a token, so the namespace's default account is safe; name another (it must exist in
    # every namespace with predictions) to attach e.g. cloud IAM identities.
    worker_service_account: str | None = None
    gpu_resource_name: str = "nvidia.com/gpu"
    default_gpus: int = 1
    default_cpu: str = "8"
    default_memory: str = "64Gi"
    populate_cpu: str = "2"
    populate_memory: str = "4Gi"
    # The CPU prepare Job before every prediction's GPU Job (boltz's input checks, MSAs). Its memory holds boltz's
    # imports (torch, RDKit) and the parsed input: sized from the worker's measured peak (README, "Prepare").
    prepare_cpu: str = "1"
    prepare_memory: str = "4Gi"
    prepare_node_selector: dict[str, str] = {}
    prepare_tolerations: list[Toleration] = []
    # A prepare that waits on a slow MSA server: past this the prediction fails with Timeout.
    prepare_timeout_seconds: int = 3600
    default_msa_store: DefaultMsaStore = DefaultMsaStore()
    # Prepare Jobs that may call MSA servers at once (the public server asks for few submitting addresses); a
    # prepare whose MSA another one is fetching waits for it whatever this says.
    msa_server_max_concurrent: int = Field(4, ge=1)
    node_selector: dict[str, str] = {}
    gpu_tolerations: list[Toleration] = [
        Toleration(key="nvidia.com/gpu", operator=TolerationOperator.EXISTS, effect=TaintEffect.NO_SCHEDULE)
    ]
    runtime_class_name: str | None = None
    # Finished Jobs (and their pods, which hold the termination message) are kept this long: long enough for
    # an operator that was down to come back and read the result.
    job_ttl_seconds: int = 24 * 3600
    default_results: DefaultResultsStore = DefaultResultsStore()
    default_queue_name: str | None = None
    # GPU-seconds one BoltzGen design of 100 designed residues takes (design to analysis), for a campaign's estimate.
    # 54 s: the ~1.5 h per 100 designs on one A10G of the SageMaker pipeline this operator replaces. Set your own
    # measured figure: status.estimate.basis names whichever is used.
    boltzgen_gpu_seconds_per_design: float = 54.0
    # A screen's estimate: GPU-seconds per ligand, and per shard (process start and model load), of boltz predict
    # with affinity. 11 and 31: the published L4 figures (one complex 42 s, four in one boltz predict 75 s).
    # Set your own measured figures: status.estimate.basis names whichever is used.
    boltz_gpu_seconds_per_ligand: float = 11.0
    boltz_gpu_seconds_per_shard: float = 31.0
    # Handler threads. Each pass waits on the apiserver most of the time (0.3 s a write under load), so the
    # number of predictions started per second is about workers / (writes x latency): 16 kept 500 applied at once
    # queued for 20 s; 64 brought the p99 to about 5 s (tests/bench/README.md).
    worker_threads: int = 64
    metrics_port: int = Field(9090, description="Prometheus metrics at :<port>/metrics; 0 turns them off.")
    # Namespaces to watch; empty means all namespaces.
    namespaces: list[str] = []
    # Webhooks (spec.notify, notify/): the hosts they may reach (exact names, `*.domain`, IP literals; none by
    # default), whether non-public addresses and cluster-internal names may be reached, the Secrets whose keys may sign
    # (the chart grants `get` on exactly these names), and the retries (attempts, first pause, longest pause, timeout).
    notify_allowed_hosts: list[str] = []
    notify_allow_private_addresses: bool = False
    notify_signing_secrets: list[str] = []
    notify_max_attempts: int = Field(8, ge=1)
    notify_backoff_seconds: float = Field(2.0, gt=0)
    notify_backoff_max_seconds: float = Field(300.0, gt=0)
    notify_timeout_seconds: float = Field(10.0, gt=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        """BOLTZ_OPERATOR_<FIELD> for each field; JSON for lists, dicts and nested models."""
        env: Mapping[str, str] = os.environ if environ is None else environ
        values: dict = {}
        for name, field in cls.model_fields.items():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None:
                continue
            if field.annotation in (str, str | None, int, float):
                values[name] = raw
            elif name == "namespaces":
                values[name] = [ns.strip() for ns in raw.split(",") if ns.strip()]
            else:
                values[name] = json.loads(raw)
        return cls.model_validate(values)

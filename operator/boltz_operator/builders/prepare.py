"""The CPU child of a BoltzPrediction that runs before any GPU: `boltz-worker prepare` (boltz's own input checks
with the cache's molecules, the given MSA files checked, the MSAs the input needs looked up in the MSA store and
fetched from the MSA server only on a miss). No GPU request: its own small resources and CPU placement (chart
values `prepare.*`)."""

from __future__ import annotations

from kubernetes import client

import boltz_contract as contract
from boltz_operator.api.prediction import BoltzPredictionSpec
from boltz_operator.builders.common import OwnerRef, boltz_cache_env, cpu_pod, run_mounts, run_volumes, worker_job
from boltz_operator.builders.msa_store import MsaStorePlacement
from boltz_operator.builders.prediction import (
    KIND,
    PREPARE_RUN_KEY,
    config_volume,
    configmap_name,
    input_file_name,
    msa_server_env,
    prepare_input_key,
)
from boltz_operator.builders.results import ResultsPlacement
from boltz_operator.config import OperatorConfig
from boltz_operator.render import InputFileRef, predict_options

__all__ = ["KIND", "COMPONENT", "ANNOTATION_MSA_KEY", "job_name", "build_run", "build_job"]

COMPONENT = "prepare"
# On a prepare Job that may call the MSA server: where the MSA it fetches is stored (the store's URI of its key),
# what the operator's index of MSAs in flight (and the MSA gate) key on.
ANNOTATION_MSA_KEY = "boltz-operator.io/msa"


def job_name(name: str) -> str:
    return f"{name}-prepare"


def build_run(
    ref: OwnerRef,
    spec: BoltzPredictionSpec,
    files: list[InputFileRef],
    results: ResultsPlacement,
    request: contract.MsaRequest | None,
    store: MsaStorePlacement | None,
) -> contract.PrepareRun:
    """S3 inputs (MSAs, templates) are fetched with the results store's endpoint and credentials, as the GPU run
    does; the MSA store only when there is something to compute."""
    return contract.PrepareRun(
        record_id=ref.name,
        input_file=input_file_name(ref.name),
        options=predict_options(spec),
        downloads=[f.s3_download(results.s3_endpoint, results.s3_region) for f in files if f.source == "s3"],
        msa_request=request,
        msa_store=store.target if store and request else None,
    )


def build_job(
    ref: OwnerRef,
    spec: BoltzPredictionSpec,
    run: contract.PrepareRun,
    files: list[InputFileRef],
    results: ResultsPlacement,
    store: MsaStorePlacement | None,
    cache_claim: str,
    config: OperatorConfig,
    fetch: bool = True,
) -> client.V1Job:
    """The prepare Job: CPU only, the model cache read-only (boltz parses CCD ligands from its molecules), the MSA
    store read-write (a PVC) or its credentials (S3), the MSA server's credentials. Retried like the GPU run
    (network and store errors); bad input fails it at once (exit code 10). `fetch`: it may call the MSA server
    (the MSA gate admitted it), so the Job carries its key for the gate's index; False: the key is known stored."""
    fetching = store if run.msa_request else None
    pod = cpu_pod(
        config,
        spec.pod_metadata,
        command=["boltz-worker", "prepare"],
        env=[*boltz_cache_env(), *results.env, *(fetching.env if fetching else []), *msa_server_env(spec)],
        # The results store only lends its S3 credentials (inputs given as S3 URIs): prepare writes no results.
        mounts=run_mounts(fetching.mounts(read_only=False) if fetching else []),
        volumes=run_volumes(
            # The prediction's run ConfigMap (builders/prediction.build_configmap) holds this step's run and input.
            config_volume(
                configmap_name(ref.name),
                [(PREPARE_RUN_KEY, contract.RUN_FILE), (prepare_input_key(ref.name), run.input_file)],
                files,
            ),
            cache_claim,
            fetching.volumes if fetching else [],
        ),
    )
    return worker_job(
        ref,
        job_name(ref.name),
        COMPONENT,
        pod,
        backoff_limit=spec.retries,
        active_deadline_seconds=config.prepare_timeout_seconds,
        ttl_seconds=config.job_ttl_seconds,
        annotations={ANNOTATION_MSA_KEY: store.target.key_uri(run.msa_request.key)}
        if store and run.msa_request and fetch
        else None,
    )

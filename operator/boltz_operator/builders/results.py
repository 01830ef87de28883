"""Where a run's results go: the resource's own store, else the operator's default.

Layout: <base>/<namespace>/<name>/<uid>/ (the uid keeps a re-created resource of the same name apart).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from kubernetes import client

import boltz_contract as contract
from boltz_operator.api.common import ResultsStore
from boltz_operator.builders.common import s3_credentials_env
from boltz_operator.config import DefaultResultsStore

RESULTS_VOLUME = "results"


class NoResultsStore(ValueError):
    pass


@dataclass(frozen=True)
class ResultsPlacement:
    target: contract.ResultsTarget
    env: list[client.V1EnvVar] = field(default_factory=list)
    volumes: list[client.V1Volume] = field(default_factory=list)
    mounts: list[client.V1VolumeMount] = field(default_factory=list)
    # S3 inputs (MSAs, templates) are read with the results store's endpoint and credentials.
    s3_endpoint: str | None = None
    s3_region: str | None = None


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def place_results(
    store: ResultsStore | None, default: DefaultResultsStore, namespace: str, name: str, uid: str
) -> ResultsPlacement:
    run_path = f"{namespace}/{name}/{uid}"
    if store is not None and store.s3 is not None:
        return _s3(
            store.s3.uri,
            store.s3.endpoint,
            store.s3.region,
            store.s3.credentials_secret_ref.name if store.s3.credentials_secret_ref else None,
            run_path,
        )
    if store is not None and store.pvc is not None:
        return _pvc(store.pvc.claim_name, store.pvc.sub_path, run_path)
    if default.s3_uri:
        return _s3(default.s3_uri, default.s3_endpoint, default.s3_region, default.s3_credentials_secret, run_path)
    if default.pvc_claim_name:
        return _pvc(default.pvc_claim_name, default.pvc_sub_path, run_path)
    raise NoResultsStore("no results store: set spec.results (s3 or pvc), or the operator's default results store")


def _s3(uri: str, endpoint: str | None, region: str | None, secret: str | None, run_path: str) -> ResultsPlacement:
    bucket, base = split_s3_uri(uri)
    prefix = posixpath.join(base, run_path) if base else run_path
    return ResultsPlacement(
        target=contract.ResultsTarget(
            uri=f"s3://{bucket}/{prefix}",
            s3=contract.S3Target(bucket=bucket, prefix=prefix, endpoint_url=endpoint, region=region),
        ),
        env=s3_credentials_env(secret),
        s3_endpoint=endpoint,
        s3_region=region,
    )


def _pvc(claim: str, sub_path: str | None, run_path: str) -> ResultsPlacement:
    relative = posixpath.join(sub_path.strip("/"), run_path) if sub_path else run_path
    return ResultsPlacement(
        target=contract.ResultsTarget(
            uri=f"pvc://{claim}/{relative}", local_dir=posixpath.join(contract.RESULTS_MOUNT, relative)
        ),
        volumes=[
            client.V1Volume(
                name=RESULTS_VOLUME,
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name=claim),
            )
        ],
        mounts=[client.V1VolumeMount(name=RESULTS_VOLUME, mount_path=contract.RESULTS_MOUNT)],
    )

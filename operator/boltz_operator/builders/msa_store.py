"""Where computed MSAs are kept (contract.msa): the prediction's own store, else the operator's default MSA store,
else the `msas/` prefix (or folder) of the results store the prediction uses.

Layout: <base>/<namespace>/<key>/ : the namespace keeps one team's sequences (an MSA reveals its query) out of
another's reach; within a namespace, every prediction of a protein reuses the one search.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from kubernetes import client

import boltz_contract as contract
from boltz_contract.msa import ENV_MSA_STORE_PREFIX, MSA_STORE_MOUNT, MsaStoreS3, MsaStoreTarget, msa_file
from boltz_operator.api.boltz_input import MsaStore
from boltz_operator.api.common import ResultsStore
from boltz_operator.builders.results import NoResultsStore, split_s3_uri
from boltz_operator.config import DefaultMsaStore, DefaultResultsStore

MSA_STORE_VOLUME = "msa-store"
RESULTS_FALLBACK = "msas"  # the prefix (or folder) of the results store that holds MSAs when no MSA store is set


@dataclass(frozen=True)
class MsaStorePlacement:
    """The store's target (run.json) and what a pod needs to reach it: env (S3 credentials as MSA_STORE_AWS_*,
    from a Secret by reference) or the PVC volume, mounted read-write by prepare and read-only by predict."""

    target: MsaStoreTarget
    env: list[client.V1EnvVar] = field(default_factory=list)
    volumes: list[client.V1Volume] = field(default_factory=list)

    def mounts(self, read_only: bool) -> list[client.V1VolumeMount]:
        return [
            client.V1VolumeMount(name=MSA_STORE_VOLUME, mount_path=MSA_STORE_MOUNT, read_only=read_only)
            for _ in self.volumes
        ]

    def file_path(self, key: str, index: int, download_dir: str, chain: str) -> tuple[str, contract.S3Download | None]:
        """Where the predict pod reads entity `index` of `key`: a path on the read-only PVC, or `download_dir`/
        msa-<chain>.csv fetched from S3 first (the returned download)."""
        target = self.target
        if target.local_dir is not None:
            return posixpath.join(target.local_dir, key, msa_file(index)), None
        assert target.s3 is not None
        dest = posixpath.join(download_dir, f"msa-{chain}.csv")
        return dest, contract.S3Download(
            uri=f"{target.key_uri(key)}/{msa_file(index)}",
            dest=dest,
            endpoint_url=target.s3.endpoint_url,
            region=target.s3.region,
            credentials_env_prefix=target.s3.credentials_env_prefix,
        )


def place_msa_store(
    store: MsaStore | None,
    default: DefaultMsaStore,
    results: ResultsStore | None,
    default_results: DefaultResultsStore,
    namespace: str,
) -> MsaStorePlacement:
    """The MSA store of a prediction in `namespace`. Raises NoResultsStore when there is none at all."""
    if store is not None and store.s3 is not None:
        secret = store.s3.credentials_secret_ref.name if store.s3.credentials_secret_ref else None
        return _s3(store.s3.uri, store.s3.endpoint, store.s3.region, secret, namespace)
    if store is not None and store.pvc is not None:
        return _pvc(store.pvc.claim_name, store.pvc.sub_path, namespace)
    if default.s3_uri:
        return _s3(default.s3_uri, default.s3_endpoint, default.s3_region, default.s3_credentials_secret, namespace)
    if default.pvc_claim_name:
        return _pvc(default.pvc_claim_name, default.pvc_sub_path, namespace)
    if results is not None and results.s3 is not None:
        secret = results.s3.credentials_secret_ref.name if results.s3.credentials_secret_ref else None
        uri = f"{results.s3.uri.rstrip('/')}/{RESULTS_FALLBACK}"
        return _s3(uri, results.s3.endpoint, results.s3.region, secret, namespace)
    if results is not None and results.pvc is not None:
        return _pvc(results.pvc.claim_name, _join(results.pvc.sub_path, RESULTS_FALLBACK), namespace)
    d = default_results
    if d.s3_uri:
        uri = f"{d.s3_uri.rstrip('/')}/{RESULTS_FALLBACK}"
        return _s3(uri, d.s3_endpoint, d.s3_region, d.s3_credentials_secret, namespace)
    if d.pvc_claim_name:
        return _pvc(d.pvc_claim_name, _join(d.pvc_sub_path, RESULTS_FALLBACK), namespace)
    raise NoResultsStore(
        "no MSA store: set spec.msaServer.store (s3 or pvc), spec.results, or the operator's default MSA or "
        "results store"
    )


def _join(*parts: str | None) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _s3(uri: str, endpoint: str | None, region: str | None, secret: str | None, namespace: str) -> MsaStorePlacement:
    bucket, base = split_s3_uri(uri)
    prefix = _join(base, namespace)
    env = [
        client.V1EnvVar(
            name=ENV_MSA_STORE_PREFIX + key,
            value_from=client.V1EnvVarSource(secret_key_ref=client.V1SecretKeySelector(name=secret, key=key)),
        )
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
        if secret
    ]
    return MsaStorePlacement(
        target=MsaStoreTarget(
            uri=f"s3://{bucket}/{prefix}",
            s3=MsaStoreS3(bucket=bucket, prefix=prefix, endpoint_url=endpoint, region=region),
        ),
        env=env,
    )


def _pvc(claim: str, sub_path: str | None, namespace: str) -> MsaStorePlacement:
    relative = _join(sub_path, namespace)
    return MsaStorePlacement(
        target=MsaStoreTarget(uri=f"pvc://{claim}/{relative}", local_dir=posixpath.join(MSA_STORE_MOUNT, relative)),
        volumes=[
            client.V1Volume(
                name=MSA_STORE_VOLUME,
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(claim_name=claim),
            )
        ],
    )

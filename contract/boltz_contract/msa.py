"""MSAs computed once per sequence: the MSA store's key and layout, shared by the operator (which keys what a
prediction needs, so that two prepare Jobs never fetch the same MSA at once) and the worker (which looks the key up
and fetches only on a miss).

What boltz 2.2.1 computes (boltz/main.py `compute_msa`): for the protein entities of one input that have no MSA,
one unpaired MMseqs2 search per entity and, when there are two or more such entities, one paired search over all
of them in entity order; it writes one `<entity>.csv` (columns key, sequence; paired rows keyed, unpaired rows key
-1) per entity. The paired rows depend on every sequence in the request and their order, so the key is over the
ordered sequences, the server and the pairing strategy (a lone entity is never paired: its key ignores the
strategy). A key holds `<i>.csv` for entity i of the request and, written last, MSA_COMPLETE_MARKER.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MSA_SERVER = "https://api.colabfold.com"  # boltz 2.2.1's --msa_server_url default
MSA_STORE_MOUNT = "/msa-store"  # where a PVC MSA store is mounted (read-write by prepare, read-only by predict)
MSA_COMPLETE_MARKER = "_COMPLETE"  # written LAST under a key: its presence means every file of the key is there
ENV_MSA_STORE_PREFIX = "MSA_STORE_"  # the MSA store's S3 credentials: MSA_STORE_AWS_ACCESS_KEY_ID, ..._SECRET_...
KEY_FORMAT = 1  # bump when the layout or the meaning of a stored MSA changes: old keys then miss


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def msa_key(server_url: str | None, pairing_strategy: str, sequences: list[str]) -> str:
    """The store key (64 hex digits) of the MSAs boltz computes for `sequences` (the protein entities without an
    MSA, in entity order) on `server_url` (None: boltz's default server).

    Raises ValueError for an empty request (nothing to compute has no key)."""
    if not sequences:
        raise ValueError("an MSA request needs at least one sequence")
    canonical = {
        "format": KEY_FORMAT,
        "server": (server_url or DEFAULT_MSA_SERVER).rstrip("/"),
        "pairing": pairing_strategy if len(sequences) > 1 else "unpaired",
        "sequences": [s.upper() for s in sequences],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def msa_file(index: int) -> str:
    """The file of entity `index` of a request, under the key's folder."""
    return f"{index}.csv"


class MsaRequest(_Model):
    """The MSAs one prediction needs from the server: its protein entities without an MSA, in entity order.
    chains[i] is the first chain id of entity i (what status reports); its MSA is msa_file(i) under the key."""

    key: str = Field(pattern=r"^[0-9a-f]{64}$")
    chains: list[str] = Field(min_length=1)
    sequences: list[str] = Field(min_length=1)


class MsaStoreS3(_Model):
    bucket: str
    prefix: str  # no leading or trailing slash; keys at <prefix>/<key>/
    endpoint_url: str | None = None
    region: str | None = None
    # Credentials come from MSA_STORE_AWS_* env vars (a Secret) when set, else from the pod's own AWS_* chain.
    credentials_env_prefix: str = ENV_MSA_STORE_PREFIX


class MsaStoreTarget(_Model):
    """Exactly one of s3 / local_dir. `uri` is what status and messages show (s3://... or pvc://claim/path)."""

    uri: str
    s3: MsaStoreS3 | None = None
    local_dir: str | None = None  # a directory under MSA_STORE_MOUNT

    def key_uri(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/{key}"


MsaSource = Literal["given", "empty", "reused", "fetched"]


class ChainMsa(_Model):
    """Where a protein chain's MSA came from: given (a file in the spec), empty (single-sequence mode), reused (the
    MSA store had it) or fetched (prepare called the MSA server and stored it)."""

    chain: str
    source: MsaSource


def msa_request_of(doc: dict, server_url: str | None, pairing_strategy: str) -> MsaRequest | None:
    """The MSAs a rendered Boltz input needs from the server: its protein entities whose `msa` is absent (or "",
    or null: boltz reads all three as "compute it"), in document order, as boltz's process_input collects them
    (`to_generate`, one per entity). Items of one sequence are one entity to boltz (one MSA): the sequence is asked
    once, under the first item's first chain. None when every protein has an MSA file or is `empty`."""
    chains: list[str] = []
    sequences: list[str] = []
    for item in doc.get("sequences") or []:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        kind, body = next(iter(item.items()))
        if str(kind).lower() != "protein" or not isinstance(body, dict) or body.get("msa") not in (None, ""):
            continue
        ids = body.get("id")
        first = ids if isinstance(ids, str) else (ids or ["?"])[0]
        sequence = str(body.get("sequence") or "")
        if sequence not in sequences:
            chains.append(str(first))
            sequences.append(sequence)
    if not sequences:
        return None
    return MsaRequest(key=msa_key(server_url, pairing_strategy, sequences), chains=chains, sequences=sequences)

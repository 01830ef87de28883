"""Which prepare Job may call the MSA server now: never two fetching the same MSA (the second waits for the first,
then finds it in the store), and at most `limit` calling servers at once (the public ColabFold server asks for few
submitting addresses and rate-limits the rest).

Two sources, merged under one lock: this process's reservations (a Job just created is not in the index yet) and
the index of prepare Jobs in flight (`msa_fetches` in handlers.py: key -> owners, and ALL -> every fetching owner; a key
is the MSA's URI in its store, contract.msa.MsaStoreTarget.key_uri, so one MSA in two stores is two keys),
which a restarted operator has before its first pass. A prediction told to wait is remembered, and woken (its pass
run again) when a prepare Job it may have waited on finishes: no polling, no lost wake-up (both sides take the lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Owner = tuple[str, str, str]  # (kind, namespace, name): a prediction or a screen
ALL = "*"  # the index key under which every fetching prepare's owner is kept
_NOUNS = {"BoltzPrediction": "prediction", "BoltzScreen": "screen"}


@dataclass(frozen=True)
class Admission:
    """fetch: the prepare may call the server (its Job carries the key); False: the key is known to be stored."""

    fetch: bool


@dataclass(frozen=True)
class Wait:
    reason: str  # WaitingForMsa, WaitingForMsaServer
    message: str


@dataclass
class MsaGate:
    limit: int
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _holders: dict[str, Owner] = field(default_factory=dict)  # key -> owner, reserved by this process
    _stored: set[str] = field(default_factory=set)  # keys a finished prepare reported in the store
    _waiting: set[Owner] = field(default_factory=set)
    _wake: set[Owner] = field(default_factory=set)

    def admit(self, owner: Owner, key: str, fetches: Mapping[str, Iterable[Owner]]) -> Admission | Wait:
        """May `owner`'s prepare, which needs MSA `key`, start? `fetches` is the index of fetching prepares."""
        with self._lock:
            if key in self._stored:
                self._waiting.discard(owner)
                return Admission(fetch=False)
            holders = {o for o in fetches.get(key, ()) if o != owner}
            if self._holders.get(key, owner) != owner:
                holders.add(self._holders[key])
            if holders:
                self._waiting.add(owner)
                kind, _, holder = sorted(holders)[0]
                return Wait(
                    "WaitingForMsa",
                    f"{_NOUNS.get(kind, kind)} {holder} is fetching the same MSA; this one starts when it is stored, "
                    "and reuses it",
                )
            busy = {o for o in fetches.get(ALL, ()) if o != owner} | {o for o in self._holders.values() if o != owner}
            if owner not in self._holders.values() and len(busy) >= self.limit:
                self._waiting.add(owner)
                return Wait(
                    "WaitingForMsaServer",
                    f"{len(busy)} prepare Jobs are calling MSA servers, the most allowed at once "
                    "(chart value msaServer.maxConcurrent); this one starts when one finishes",
                )
            self._holders[key] = owner
            self._waiting.discard(owner)
            return Admission(fetch=True)

    def release(self, owner: Owner, key: str, stored: bool) -> None:
        """`owner`'s prepare finished; `stored`: it reported the MSA of `key` in the store (reused or fetched).
        Every waiting prediction is woken: the next pass of each decides again."""
        with self._lock:
            if self._holders.get(key) == owner:
                del self._holders[key]
            if stored:
                self._stored.add(key)
            self._wake |= self._waiting
            self._waiting.clear()

    def forget(self, owner: Owner) -> None:
        """The prediction was deleted: drop its reservations (its prepare Job goes with it) and wake the waiters."""
        with self._lock:
            for key in [k for k, o in self._holders.items() if o == owner]:
                del self._holders[key]
                self._wake |= self._waiting
                self._waiting.clear()
            self._waiting.discard(owner)

    def take_wakeups(self) -> list[Owner]:
        """The predictions to run a pass for now (each once), oldest request first is the caller's business."""
        with self._lock:
            wake, self._wake = sorted(self._wake), set()
            return wake


@dataclass(frozen=True)
class MsaGateView:
    """The gate as one pass sees it: the process's gate and the index of fetching prepares at that moment."""

    gate: MsaGate
    fetches: Mapping[str, Iterable[Owner]]

    def admit(self, owner: Owner, key: str) -> Admission | Wait:
        return self.gate.admit(owner, key, self.fetches)

    def release(self, owner: Owner, key: str, stored: bool) -> None:
        self.gate.release(owner, key, stored)

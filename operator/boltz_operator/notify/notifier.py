"""The delivery queue: an asyncio loop in a thread of its own, fed after every reconcile pass, never waited on.

After a pass, `offer` looks at the object's status: each (event, webhook) that status.notifications lists as neither
delivered nor failed, and that is not being delivered already, becomes a task on the notifier's loop. The task reads
the object afresh, checks the URL against the host policy, signs and POSTs the CloudEvent with retries
(sender.deliver), then marks the webhook delivered or failed in the record, under the object's lock (the one
passes take) so that a pass and a mark never overwrite each other. A SIGKILL loses only in-memory tasks: the
records still list those webhooks as pending, and the restarted operator's first pass offers them again, same ids.

The signing key is read when needed (`get` on the Secret, by name: the chart grants exactly the names in
notifications.signingSecretNames) and never stored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from boltz_operator.api.notify import NotificationRecord, Webhook
from boltz_operator.config import OperatorConfig
from boltz_operator.metrics import Metrics
from boltz_operator.notify.cloudevent import CONTENT_TYPE, cloud_event, encode
from boltz_operator.notify.policy import HostPolicy, PolicyResolver, Refused
from boltz_operator.notify.records import mark, notify_of, pending
from boltz_operator.notify.sender import AttemptResult, RetryPolicy, deliver
from boltz_operator.notify.signing import SIGNATURE_HEADER, signature
from boltz_operator.reconcile.bookkeeping import Bookkeeping

log = logging.getLogger(__name__)
USER_AGENT = "boltz-operator-webhooks/1"

DeliveryKey = tuple[str, str, str, str, int]  # kind, namespace, name, event id, webhook index


class NotifierKube(Protocol):
    """What the notifier asks of the API (boltz_operator.kube.Kube)."""

    def get_object(self, plural: str, namespace: str, name: str) -> dict | None: ...

    def patch_status(self, plural: str, namespace: str, name: str, status: dict) -> None: ...

    def post_event(self, body: dict, type_: str, reason: str, message: str) -> None: ...

    def read_secret_key(self, namespace: str, name: str, key: str) -> bytes: ...


def redacted(url: str) -> str:
    """scheme://host[:port]/...: what Events and logs show of a webhook URL (paths and queries often hold tokens,
    as Slack's and Teams' incoming-webhook URLs do; user info may hold a password)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


class SigningKeyError(Exception):
    """The signing key cannot be had (a Secret the operator may not read, a missing Secret or key)."""


class Notifier:
    """Delivers spec.notify events. `start()` once; `offer(...)` from any thread after a pass."""

    def __init__(self, kube: NotifierKube, config: OperatorConfig, metrics: Metrics, book: Bookkeeping,
                 plural_of: Callable[[str], str]):  # fmt: skip
        self.kube, self.metrics, self.book, self.plural_of = kube, metrics, book, plural_of
        self.policy = HostPolicy(tuple(config.notify_allowed_hosts), config.notify_allow_private_addresses)
        self.retry = RetryPolicy(
            config.notify_max_attempts, config.notify_backoff_seconds, config.notify_backoff_max_seconds,
            config.notify_timeout_seconds,
        )  # fmt: skip
        self.signing_secrets = frozenset(config.notify_signing_secrets)
        self._in_flight: set[DeliveryKey] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------------------------------------ thread

    def start(self) -> None:
        """Start the notifier's thread and event loop; returns once it accepts work."""
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), name="boltz-notifier", daemon=True).start()
        if not ready.wait(timeout=30):
            raise RuntimeError("the notifier's event loop did not start")

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._session = loop.run_until_complete(self._open_session())
        self._loop = loop
        ready.set()
        loop.run_forever()

    async def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(resolver=PolicyResolver(self.policy), limit=32)
        return aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT})

    def offer(self, kind: str, body: dict, status: dict | None) -> list[Future]:
        """Queue every pending delivery of this object (status: the one the pass left; None: the body's own).

        Cheap when the object has no spec.notify; never blocks. Returns the queued deliveries (for tests).
        """
        notify = notify_of(body)
        if notify is None or self._loop is None:
            return []
        meta = body["metadata"]
        futures = []
        for record, index in pending(status if status is not None else body.get("status") or {}, notify):
            key = (kind, meta["namespace"], meta["name"], record.id, index)
            with self._lock:
                if key in self._in_flight:
                    continue
                self._in_flight.add(key)
            futures.append(asyncio.run_coroutine_threadsafe(self._deliver(key), self._loop))
        return futures

    # ------------------------------------------------------------------------------------------------ a delivery

    async def _deliver(self, key: DeliveryKey) -> None:
        """Deliver one (event, webhook). An unexpected error (the API unreachable while reading or marking) is retried
        with the same backoff rather than left for the object's next pass, which a finished run may never get before
        the next restart; a POST repeated that way is one more at-least-once delivery, same id."""
        kind, namespace, name, event_id, index = key
        plural = self.plural_of(kind)
        try:
            for attempt in range(1, self.retry.max_attempts + 1):
                try:
                    body = await asyncio.to_thread(self.kube.get_object, plural, namespace, name)
                    found = self._pending_record(body, event_id, index)
                    if body is None or found is None:
                        return  # deleted, or marked by an earlier delivery
                    record, webhook = found
                    await self._send(kind, plural, body, record, index, webhook)
                    return
                except Exception:  # noqa: BLE001 (see the docstring; the record stays pending meanwhile)
                    log.exception("notification %s to webhook %d of %s/%s: unexpected error (try %d)", event_id,
                                  index, namespace, name, attempt)  # fmt: skip
                    await asyncio.sleep(self.retry.delay(attempt))
        finally:
            with self._lock:
                self._in_flight.discard(key)

    def _pending_record(
        self, body: dict | None, event_id: str, index: int
    ) -> tuple[NotificationRecord, Webhook] | None:
        notify = notify_of(body) if body else None
        if body is None or notify is None or index >= len(notify.webhooks):
            return None
        for record, i in pending(body.get("status") or {}, notify):
            if record.id == event_id and i == index:
                return record, notify.webhooks[index]
        return None

    async def _send(self, kind: str, plural: str, body: dict, record: NotificationRecord, index: int,
                    webhook: Webhook) -> None:  # fmt: skip
        namespace = body["metadata"]["namespace"]
        where = f"webhook {index} ({redacted(webhook.url)})"
        try:
            self.policy.check_url(webhook.url)
            key = await asyncio.to_thread(self._signing_key, namespace, webhook)
        except (Refused, SigningKeyError) as err:
            self.metrics.notifications.labels(kind, namespace, "refused").inc()
            await self._settle(kind, plural, body, record, index, False, f"{record.type} to {where} refused: {err}")
            return
        payload = encode(cloud_event(body, plural, record))

        async def headers() -> dict[str, str]:
            out = {"Content-Type": CONTENT_TYPE}
            if key is not None:
                out[SIGNATURE_HEADER] = signature(key, payload, int(time.time()))
            return out

        async def failed_attempt(attempt: int, result: AttemptResult) -> None:
            self.metrics.notifications.labels(kind, namespace, "attempt_failed").inc()
            log.warning("%s of %s/%s to %s, attempt %d: %s", record.id, namespace, body["metadata"]["name"], where,
                        attempt, result.error)  # fmt: skip
            if attempt == 1 and result.retryable:
                message = f"{record.type} to {where}: {result.error}; retrying with backoff"
                await asyncio.to_thread(self.kube.post_event, body, "Warning", "NotificationRetrying", message)

        assert self._session is not None
        result = await deliver(self._session, webhook.url, payload, headers, self.retry, failed_attempt)
        if result.ok:
            self.metrics.notifications.labels(kind, namespace, "delivered").inc()
            await self._settle(kind, plural, body, record, index, True, None)
        else:
            self.metrics.notifications.labels(kind, namespace, "failed").inc()
            await self._settle(kind, plural, body, record, index, False, f"{record.type} to {where}: {result.error}")

    def _signing_key(self, namespace: str, webhook: Webhook) -> bytes | None:
        ref = webhook.signing_secret_ref
        if ref is None:
            return None
        if ref.name not in self.signing_secrets:
            raise SigningKeyError(f"Secret {ref.name} is not in the operator's notifications.signingSecretNames")
        try:
            return self.kube.read_secret_key(namespace, ref.name, ref.key)
        except Exception as err:  # noqa: BLE001 (any failure to read it is reported the same way)
            raise SigningKeyError(f"cannot read key {ref.key} of Secret {ref.name}: {err}") from err

    async def _settle(self, kind: str, plural: str, body: dict, record: NotificationRecord, index: int,
                      delivered: bool, failure: str | None) -> None:  # fmt: skip
        await asyncio.to_thread(self._mark, kind, plural, body, record.id, index, delivered)
        if failure:
            await asyncio.to_thread(self.kube.post_event, body, "Warning", "NotificationFailed", failure)

    def _mark(self, kind: str, plural: str, body: dict, event_id: str, index: int, delivered: bool) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        with self.book.lock(kind, namespace, name):  # no pass of this object runs meanwhile
            fresh = self.kube.get_object(plural, namespace, name)
            if fresh is None or fresh["metadata"].get("uid") != meta.get("uid"):
                return
            status = fresh.get("status") or {}
            records = mark(status, event_id, index, delivered)
            if records is None:
                return
            self.kube.patch_status(plural, namespace, name, {"notifications": records})
            self.book.remember_status_fields(kind, fresh, {"notifications": records})

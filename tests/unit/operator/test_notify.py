"""Webhook notifications, without a cluster: event records in status, the CloudEvent, signing, the host policy, the
retrying sender and the notifier (against real loopback HTTP receivers; the API is faked)."""

from __future__ import annotations

import asyncio
import copy
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest

from boltz_contract import RunSummary
from boltz_operator.api.notify import MAX_NOTIFICATION_RECORDS, NotificationRecord, Notify
from boltz_operator.api.prediction import BoltzPredictionStatus, PredictionPhase
from boltz_operator.config import OperatorConfig
from boltz_operator.kube import TerminatedWorker
from boltz_operator.metrics import Metrics
from boltz_operator.notify.cloudevent import cloud_event, encode
from boltz_operator.notify.notifier import Notifier
from boltz_operator.notify.policy import HostPolicy, PolicyResolver, Refused, RefusedAddress
from boltz_operator.notify.records import event_type, mark, pending, with_event
from boltz_operator.notify.sender import RetryPolicy, deliver
from boltz_operator.notify.signing import SIGNATURE_HEADER, signature, verify
from boltz_operator.reconcile.bookkeeping import Bookkeeping
from boltz_operator.reconcile.prediction import reconcile_prediction
from support.fake_kube import FakeKube
from support.objects import JobBody, Resource
from support.wait import wait_until
from support.webhooks import Receiver

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
HOOK = {"url": "https://hooks.example.com/boltz"}


def body_with_notify(on: str = "Terminal", webhooks: list[dict] | None = None, status: dict | None = None) -> dict:
    notify = {"webhooks": webhooks or [HOOK], "on": on}
    return Resource.prediction("egfr").spec(notify=notify).status(status).obj()


def status_in(phase: PredictionPhase | None, **fields) -> BoltzPredictionStatus:
    return BoltzPredictionStatus(phase=phase, **fields)


# ---------------------------------------------------------------------------------------------- records


def test_a_terminal_phase_gets_one_record_with_a_stable_id():
    body = body_with_notify()
    new = with_event(body, "Running", status_in(PredictionPhase.SUCCEEDED), NOW)
    assert [(r.id, r.type, r.phase, r.time) for r in new.notifications] == [
        ("u1.succeeded", "io.boltz-operator.prediction.succeeded", "Succeeded", NOW)
    ]
    assert with_event(body, "Succeeded", new, NOW) is new  # no phase change: no second record


def test_terminal_notify_ignores_other_phases_and_every_phase_records_each_change():
    assert with_event(body_with_notify(), "Pending", status_in(PredictionPhase.RUNNING), NOW).notifications is None
    body = body_with_notify(on="EveryPhase")
    status = status_in(None)
    for old, phase in ((None, "Pending"), ("Pending", "Running"), ("Running", "Pending"), ("Pending", "Running")):
        status = with_event(body, old, status.model_copy(update={"phase": PredictionPhase(phase)}), NOW)
    assert [r.id for r in status.notifications] == ["u1.pending", "u1.running", "u1.pending.2", "u1.running.2"]


def test_no_notify_no_record():
    body = Resource.prediction("egfr").obj()
    assert with_event(body, "Running", status_in(PredictionPhase.FAILED), NOW).notifications is None


def test_records_are_capped_dropping_settled_ones_first():
    old = [NotificationRecord(id=f"e{i}", type="t", phase="Running", time=NOW, delivered=[0]) for i in range(30)]
    old[0] = old[0].model_copy(update={"delivered": []})  # still owed: kept
    body = body_with_notify(on="EveryPhase")
    new = with_event(body, "Running", status_in(PredictionPhase.FAILED, notifications=old), NOW)
    ids = [r.id for r in new.notifications]
    assert len(ids) == MAX_NOTIFICATION_RECORDS and ids[0] == "e0" and ids[-1] == "u1.failed"


def test_pending_lists_each_unacknowledged_webhook_and_mark_settles_one():
    body = body_with_notify(webhooks=[HOOK, {"url": "https://hooks.example.com/two"}])
    status = with_event(body, "Running", status_in(PredictionPhase.SUCCEEDED), NOW).to_body()
    notify = Notify.model_validate(body["spec"]["notify"])
    owed = pending(status, notify)
    assert [(r.id, i) for r, i in owed] == [("u1.succeeded", 0), ("u1.succeeded", 1)]
    records = mark(status, "u1.succeeded", 1, delivered=True)
    assert records[0]["delivered"] == [1]
    assert mark({**status, "notifications": records}, "u1.succeeded", 1, delivered=False) is None  # settled
    records = mark({**status, "notifications": records}, "u1.succeeded", 0, delivered=False)
    assert records[0]["failed"] == [0]
    assert pending({**status, "notifications": records}, notify) == []


def test_the_record_is_written_in_the_same_status_write_as_the_phase():
    """What makes delivery survive a SIGKILL: no moment where the phase is written and its event is not."""
    summary = RunSummary(ok=True, results_uri="s3://b/p", confidence_score=0.9, report="report.html")
    kube = FakeKube(TerminatedWorker(exit_code=0, summary=summary, raw_message="", reason="Completed"))
    done = JobBody("egfr-predict").conditions([{"type": "Complete", "status": "True"}]).status(succeeded=1).obj()
    reconcile_prediction(
        body_with_notify(status={"phase": "Running"}), Resource.model_cache().phase("Ready").obj(), done, kube,
        OperatorConfig(), NOW,
    )  # fmt: skip
    [write] = kube.status_patches
    assert write["phase"] == "Succeeded"
    assert [(r["id"], r["phase"]) for r in write["notifications"]] == [("u1.succeeded", "Succeeded")]


# ---------------------------------------------------------------------------------------------- the event


def test_the_cloud_event_has_the_required_attributes_and_the_results():
    body = body_with_notify(status={"phase": "Succeeded", "message": "prediction complete",
                                    "results": {"uri": "s3://b/p", "confidenceScore": 0.9,
                                                "report": "s3://b/p/report.html"}})  # fmt: skip
    record = NotificationRecord(id="u1.succeeded", type=event_type("BoltzPrediction", "Succeeded"),
                                phase="Succeeded", time=NOW)  # fmt: skip
    event = cloud_event(body, "boltzpredictions", record)
    assert event["specversion"] == "1.0" and event["id"] == "u1.succeeded"
    assert event["type"] == "io.boltz-operator.prediction.succeeded"
    assert event["source"] == "/apis/boltz-operator.io/v1alpha1/namespaces/lab/boltzpredictions/egfr"
    assert event["time"] == "2026-11-30T03:00:00Z" and event["datacontenttype"] == "application/json"
    assert event["data"]["phase"] == "Succeeded" and event["data"]["message"] == "prediction complete"
    assert event["data"]["results"]["report"] == "s3://b/p/report.html"
    earlier = record.model_copy(update={"phase": "Running", "id": "u1.running"})
    assert "results" not in cloud_event(body, "boltzpredictions", earlier)["data"]  # results are the terminal's
    assert encode(event) == encode(copy.deepcopy(event))  # the same bytes every time (what the signature covers)
    assert event_type("BoltzGenCampaign", "Failed") == "io.boltz-operator.campaign.failed"


def test_signatures_verify_and_tampering_or_age_fails():
    key, body, now = b"s3cret", b'{"id":"x"}', int(time.time())
    header = signature(key, body, now)
    assert verify(key, body, header, now)
    assert not verify(key, body + b" ", header, now)
    assert not verify(b"other", body, header, now)
    assert not verify(key, body, header, now + 3600)
    assert not verify(key, body, "garbage", now)


# ---------------------------------------------------------------------------------------------- the host policy


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://hooks.example.com/x", None),
        ("https://a.b.webhook.example/x", None),
        ("https://webhook.example/x", "not in"),  # *.domain means its subdomains
        ("https://evil.example/x", "not in"),
        ("ftp://hooks.example.com/x", r"not an http\(s\) URL"),
        ("http://169.254.169.254/latest/meta-data", "not public"),  # listed, yet link-local
        ("http://10.0.0.7/", "not public"),
        ("http://kubernetes.default.svc/", "cluster-internal"),
        ("http://metadata/", "cluster-internal"),
        ("http://[::ffff:127.0.0.1]/", "not public"),
    ],
)
def test_the_host_policy(url, reason):
    policy = HostPolicy(
        ("hooks.example.com", "*.webhook.example", "169.254.169.254", "10.0.0.7", "kubernetes.default.svc",
         "metadata", "::ffff:127.0.0.1"),
    )  # fmt: skip
    if reason is None:
        policy.check_url(url)
    else:
        with pytest.raises(Refused, match=reason):
            policy.check_url(url)


def test_private_addresses_only_when_allowed():
    assert HostPolicy(("127.0.0.1",), allow_private_addresses=True).check_url("http://127.0.0.1:8080/") == "127.0.0.1"
    with pytest.raises(Refused, match="not public"):
        HostPolicy(("127.0.0.1",)).check_url("http://127.0.0.1:8080/")


def test_the_resolver_keeps_only_allowed_addresses():
    """DNS rebinding: a listed name that resolves to a private address is refused at connection time."""

    class FixedResolver(aiohttp.abc.AbstractResolver):
        def __init__(self, addresses):
            self.addresses = addresses

        async def resolve(self, host, port=0, family=socket.AF_INET):
            return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
                    for a in self.addresses]  # fmt: skip

        async def close(self):
            pass

    policy = HostPolicy(("hooks.example.com",))
    mixed = PolicyResolver(policy, FixedResolver(["10.1.2.3", "93.184.215.14"]))
    assert [r["host"] for r in asyncio.run(mixed.resolve("hooks.example.com", 443))] == ["93.184.215.14"]
    private = PolicyResolver(policy, FixedResolver(["169.254.169.254"]))
    with pytest.raises(RefusedAddress, match="169.254.169.254"):
        asyncio.run(private.resolve("hooks.example.com", 443))


# ---------------------------------------------------------------------------------------------- the sender


def test_backoff_doubles_with_jitter_up_to_the_cap():
    retry = RetryPolicy(base_seconds=2, max_seconds=30)
    rng = random.Random(1)
    delays = [retry.delay(n, rng) for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        nominal = min(30, 2 * 2 ** (n - 1))
        assert 0.8 * nominal <= delay < 1.2 * nominal


def _send(url: str, retry: RetryPolicy) -> tuple:
    failures = []

    async def run():
        async def headers():
            return {"Content-Type": "application/json"}

        async def failed(attempt, result):
            failures.append((attempt, result.status))

        async with aiohttp.ClientSession() as session:
            return await deliver(session, url, b"{}", headers, retry, failed)

    return asyncio.run(run()), failures


def test_5xx_is_retried_until_acknowledged():
    with Receiver(answers=[500, 503]) as receiver:
        result, failures = _send(receiver.url, RetryPolicy(max_attempts=5, base_seconds=0.01))
        assert result.ok and result.status == 200
        assert failures == [(1, 500), (2, 503)] and len(receiver.requests()) == 3


def test_a_4xx_is_final_and_attempts_are_bounded():
    with Receiver(default=401) as receiver:
        result, failures = _send(receiver.url, RetryPolicy(max_attempts=5, base_seconds=0.01))
        assert not result.ok and not result.retryable and failures == [(1, 401)]
    with Receiver(default=500) as receiver:
        result, failures = _send(receiver.url, RetryPolicy(max_attempts=3, base_seconds=0.01))
        assert not result.ok and len(receiver.requests()) == 3 and len(failures) == 3


# ---------------------------------------------------------------------------------------------- the notifier


@dataclass
class ObjectStore:
    """The API as the notifier sees it: one object, its status patches applied, Events kept."""

    body: dict
    secrets: dict[tuple[str, str], bytes] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    patches: list[dict] = field(default_factory=list)

    def get_object(self, plural, namespace, name):
        return copy.deepcopy(self.body)

    def patch_status(self, plural, namespace, name, status):
        self.patches.append(status)
        self.body["status"] = {**self.body.get("status", {}), **status}

    def post_event(self, body, type_, reason, message):
        self.events.append((type_, reason, message))

    def read_secret_key(self, namespace, name, key):
        return self.secrets[(name, key)]


def notifier_for(store: ObjectStore, **config) -> tuple[Notifier, Metrics]:
    metrics = Metrics()
    settings = {"notify_backoff_seconds": 0.01, "notify_max_attempts": 3, **config}
    notifier = Notifier(store, OperatorConfig(**settings), metrics, Bookkeeping(), lambda kind: "boltzpredictions")
    notifier.start()
    return notifier, metrics


def succeeded_body(webhooks: list[dict]) -> dict:
    body = body_with_notify(webhooks=webhooks, status={"phase": "Running"})
    status = with_event(body, "Running", status_in(PredictionPhase.SUCCEEDED), NOW)
    return {**body, "status": status.to_body()}


def counter(metrics: Metrics, outcome: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "boltz_notifications_total", {"kind": "BoltzPrediction", "namespace": "lab", "outcome": outcome}
        )
        or 0.0
    )


def test_the_notifier_signs_delivers_and_marks_the_record():
    with Receiver() as receiver:
        webhooks = [{"url": receiver.url, "signingSecretRef": {"name": "hooks", "key": "k"}}]
        store = ObjectStore(succeeded_body(webhooks), secrets={("hooks", "k"): b"key"})
        notifier, metrics = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True,
                                         notify_signing_secrets=["hooks"])  # fmt: skip
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        [request] = receiver.requests()
        assert request.event["id"] == "u1.succeeded"
        assert verify(b"key", request.body, request.headers[SIGNATURE_HEADER], int(time.time()))
        assert request.headers["Content-Type"].startswith("application/cloudevents+json")
        assert store.body["status"]["notifications"][0]["delivered"] == [0]
        assert notifier.offer("BoltzPrediction", store.body, None) == []  # nothing owed any more
        assert counter(metrics, "delivered") == 1


def test_a_host_outside_the_allow_list_is_never_contacted_and_shows_as_an_event_and_metric():
    with Receiver() as receiver:
        store = ObjectStore(succeeded_body([{"url": receiver.url.replace("127.0.0.1", "localhost")}]))
        notifier, metrics = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True)
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        assert receiver.requests() == []
        assert store.body["status"]["notifications"][0]["failed"] == [0]
        [(type_, reason, message)] = store.events
        assert (type_, reason) == ("Warning", "NotificationFailed") and "allowedHosts" in message
        assert counter(metrics, "refused") == 1


def test_a_signing_secret_the_operator_may_not_read_is_refused_without_asking_the_api():
    with Receiver() as receiver:
        webhooks = [{"url": receiver.url, "signingSecretRef": {"name": "other", "key": "k"}}]
        store = ObjectStore(succeeded_body(webhooks), secrets={("other", "k"): b"key"})
        notifier, _ = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True,
                                   notify_signing_secrets=["hooks"])  # fmt: skip
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        assert receiver.requests() == [] and "signingSecretNames" in store.events[0][2]


def test_retries_then_gives_up_with_an_event_each_way():
    with Receiver(default=500) as receiver:
        store = ObjectStore(succeeded_body([{"url": receiver.url}]))
        notifier, metrics = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True)
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        assert len(receiver.requests()) == 3
        assert len({r.event["id"] for r in receiver.requests()}) == 1  # the same event each time
        assert [reason for _, reason, _ in store.events] == ["NotificationRetrying", "NotificationFailed"]
        assert counter(metrics, "attempt_failed") == 3 and counter(metrics, "failed") == 1
        wait_until(lambda: store.body["status"]["notifications"][0]["failed"] == [0], what="marked failed")


def test_campaigns_get_their_own_event_type():
    from boltz_operator.api.campaign import BoltzGenCampaignStatus, CampaignPhase

    body = Resource.campaign("pdl1").spec(notify={"webhooks": [HOOK]}).obj()
    new = with_event(body, "Filtering", BoltzGenCampaignStatus(phase=CampaignPhase.FAILED), NOW)
    assert [(r.id, r.type) for r in new.notifications] == [("u1.failed", "io.boltz-operator.campaign.failed")]


def test_events_and_logs_never_show_a_webhook_urls_path_or_credentials():
    from boltz_operator.notify.notifier import redacted

    url = "https://user:pw@hooks.slack.example:8443/services/T000/B000/XXXXSECRET?token=abc"
    assert redacted(url) == "https://hooks.slack.example:8443/..."
    with Receiver(default=500) as receiver:
        store = ObjectStore(succeeded_body([{"url": receiver.url + "/SECRET-TOKEN"}]))
        notifier, _ = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True)
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        assert store.events and not any("SECRET-TOKEN" in message for _, _, message in store.events)


def test_an_api_error_while_marking_is_retried_not_left_for_the_next_pass():
    class FlakyStore(ObjectStore):
        fail_patches = 2

        def patch_status(self, plural, namespace, name, status):
            if self.fail_patches:
                self.fail_patches -= 1
                raise ConnectionError("apiserver unreachable")
            super().patch_status(plural, namespace, name, status)

    with Receiver() as receiver:
        store = FlakyStore(succeeded_body([{"url": receiver.url}]))
        notifier, _ = notifier_for(store, notify_allowed_hosts=["127.0.0.1"], notify_allow_private_addresses=True)
        [future] = notifier.offer("BoltzPrediction", store.body, None)
        future.result(timeout=30)
        assert store.body["status"]["notifications"][0]["delivered"] == [0]
        assert len(receiver.requests()) == 3  # POSTed again after each failed mark: at least once, the same event
        assert len({r.event["id"] for r in receiver.requests()}) == 1


def test_screens_get_their_own_event_type():
    from boltz_operator.api.screen import BoltzScreenStatus, ScreenPhase

    spec = {"notify": {"webhooks": [HOOK]}}
    body = {"kind": "BoltzScreen", "metadata": {"uid": "s1", "namespace": "lab", "name": "egfr"}, "spec": spec}
    new = with_event(body, "Ranking", BoltzScreenStatus(phase=ScreenPhase.SUCCEEDED), NOW)
    assert [(r.id, r.type) for r in new.notifications] == [("s1.succeeded", "io.boltz-operator.screen.succeeded")]

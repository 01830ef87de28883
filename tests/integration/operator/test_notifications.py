"""Webhooks (spec.notify) on the real control plane: the operator under the chart's RBAC (with the signing Secret's
name granted), kwok playing the worker, real HTTP receivers on loopback."""

from __future__ import annotations

import base64
import time
import urllib.request

import pytest

from boltz_operator.notify.signing import SIGNATURE_HEADER, verify
from support.manifests import (
    as_input,
    campaign,
    filter_ok,
    merge_played,
    model_cache,
    played,
    predict_ok,
    prediction,
    shard_ok,
)
from support.operator_fixtures import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT, WEBHOOK_SIGNING_SECRET
from support.wait import wait_until
from support.webhooks import Receiver

pytestmark = pytest.mark.cluster
KEY = b"a signing key only the receiver and the Secret know"


def setup_namespace(cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))
    secret = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": WEBHOOK_SIGNING_SECRET},
        "data": {"hmac": base64.b64encode(KEY).decode()},
    }  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(secret))


def notified_prediction(cluster, namespace: str, name: str, webhooks: list[dict], **spec) -> None:
    uri = f"s3://results/{namespace}/{name}"
    body = prediction(name, pod_metadata=played(predict_ok(uri), run_duration="300ms"), notify={"webhooks": webhooks},
                      **spec)  # fmt: skip
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))


def notifications(cluster, namespace: str, name: str) -> list[dict]:
    obj = cluster.kubectl_json("get", "boltzprediction", name, "-n", namespace)
    return (obj.get("status") or {}).get("notifications") or []


def settled(cluster, namespace: str, name: str, field: str, indexes: list[int]):
    records = notifications(cluster, namespace, name)
    return records if records and records[-1].get(field) == indexes else None


def events(cluster, namespace: str, reason: str) -> list[dict]:
    items = cluster.kubectl_json("get", "events", "-n", namespace)["items"]
    return [e for e in items if e["reason"] == reason]


def metric(operator, outcome: str, namespace: str) -> float:
    text = urllib.request.urlopen(operator.metrics_url, timeout=5).read().decode()
    prefix = f'boltz_notifications_total{{kind="BoltzPrediction",namespace="{namespace}",outcome="{outcome}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def test_the_operator_may_read_the_named_signing_secret_and_no_other(cluster, namespace, operator):
    who = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"

    def can(*args: str) -> bool:
        return cluster.kubectl("auth", "can-i", *args, "-n", namespace, "--as", who, check=False).returncode == 0

    assert can("get", f"secret/{WEBHOOK_SIGNING_SECRET}")
    assert not can("get", "secret/results-s3") and not can("list", "secrets") and not can("watch", "secrets")


def test_a_finished_prediction_is_announced_once_signed_with_its_results(cluster, namespace, operator):
    setup_namespace(cluster, namespace)
    with Receiver() as signed, Receiver() as plain:
        notified_prediction(cluster, namespace, "told", [
            {"url": signed.url, "signingSecretRef": {"name": WEBHOOK_SIGNING_SECRET, "key": "hmac"}},
            {"url": plain.url},
        ])  # fmt: skip
        wait_until(lambda: settled(cluster, namespace, "told", "delivered", [0, 1]), timeout=90,
                   what="both webhooks marked delivered")  # fmt: skip
        [request] = signed.requests()
        assert verify(KEY, request.body, request.headers[SIGNATURE_HEADER], int(time.time()))
        event = request.event
        uid = cluster.kubectl_json("get", "boltzprediction", "told", "-n", namespace)["metadata"]["uid"]
        assert (event["id"], event["type"]) == (f"{uid}.succeeded", "io.boltz-operator.prediction.succeeded")
        assert event["specversion"] == "1.0" and event["source"].endswith(
            f"/namespaces/{namespace}/boltzpredictions/told"
        )
        data = event["data"]
        assert data["phase"] == "Succeeded" and data["results"]["uri"] == f"s3://results/{namespace}/told"
        assert data["results"]["confidenceScore"] == 0.91 and data["results"]["affinityPredValue"] == -1.25
        [unsigned] = plain.requests()
        assert SIGNATURE_HEADER not in unsigned.headers and unsigned.event["id"] == event["id"]
        assert len(signed.requests()) == 1  # once acknowledged, never again


def test_a_receiver_answering_500_gets_the_same_event_again_until_it_acknowledges(cluster, namespace, operator):
    setup_namespace(cluster, namespace)
    retried_before = metric(operator, "attempt_failed", namespace)
    with Receiver(answers=[500, 500, 503]) as receiver:
        notified_prediction(cluster, namespace, "flaky", [{"url": receiver.url}])
        wait_until(lambda: settled(cluster, namespace, "flaky", "delivered", [0]), timeout=90, what="delivered")
        requests = receiver.requests()
        assert [r.answered for r in requests] == [500, 500, 503, 200]
        assert len({r.body for r in requests}) == 1  # the same event, byte for byte
    assert metric(operator, "attempt_failed", namespace) - retried_before == 3
    assert wait_until(lambda: events(cluster, namespace, "NotificationRetrying"), timeout=30, what="the Event")


def test_delivery_is_at_least_once_across_an_operator_sigkill(cluster, namespace, operator):
    setup_namespace(cluster, namespace)
    with Receiver(default=500) as receiver:
        notified_prediction(cluster, namespace, "killed", [{"url": receiver.url}])
        receiver.wait_for(2, timeout=90)  # the event exists and is being retried
        operator.kill()
        receiver.set_default(200)
        seen_before_restart = len(receiver.requests())
        operator.start()
        wait_until(lambda: settled(cluster, namespace, "killed", "delivered", [0]), timeout=90,
                   what="delivered by the restarted operator")  # fmt: skip
        requests = receiver.requests()
        assert len(requests) > seen_before_restart and requests[-1].answered == 200
        assert len({r.event["id"] for r in requests}) == 1  # same id before and after the kill: receivers dedupe


def test_no_delivery_to_a_host_outside_the_allow_list(cluster, namespace, operator):
    setup_namespace(cluster, namespace)
    refused_before = metric(operator, "refused", namespace)
    with Receiver() as receiver:
        outside = receiver.url.replace("127.0.0.1", "localhost")  # the same server, by a name not on the list
        notified_prediction(cluster, namespace, "fenced", [{"url": outside}, {"url": receiver.url}])
        records = wait_until(lambda: settled(cluster, namespace, "fenced", "delivered", [1]), timeout=90,
                             what="the allowed webhook delivered")  # fmt: skip
        wait_until(lambda: settled(cluster, namespace, "fenced", "failed", [0]), timeout=30, what="the other failed")
        assert [r.path for r in receiver.requests()] == ["/hook"]  # one request: the allowed URL's
        assert records[-1]["id"].endswith(".succeeded")
    [event] = wait_until(lambda: events(cluster, namespace, "NotificationFailed"), timeout=30, what="the Event")
    assert "localhost" in event["message"] and "allowedHosts" in event["message"]
    assert metric(operator, "refused", namespace) - refused_before == 1


def test_a_campaign_told_of_every_phase(cluster, namespace, operator):
    """on: EveryPhase, for the other run kind: one event per phase, in order, the last with the top designs."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache("boltzgen", bundles=["boltzgen"])))
    pods = merge_played(
        *[played(shard_ok(i, 25), only=f"index-{i}") for i in range(2)],
        played(filter_ok([0, 1], 50, 8).model_copy(update={"report": "report.html"}), only="filter"),
    )
    with Receiver() as receiver:
        body = campaign("told", pod_metadata=pods, numDesigns=50, budget=8, shards=2,
                        notify={"webhooks": [{"url": receiver.url}], "on": "EveryPhase"})  # fmt: skip
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))

        def succeeded_and_delivered():
            obj = cluster.kubectl_json("get", "boltzgencampaign", "told", "-n", namespace)
            records = (obj.get("status") or {}).get("notifications") or []
            done = obj["status"].get("phase") == "Succeeded" and all(r.get("delivered") == [0] for r in records)
            return records if done else None

        records = wait_until(succeeded_and_delivered, timeout=120, what="the campaign Succeeded, every event delivered")
        events = [r.event for r in receiver.requests()]
    phases = [r["phase"] for r in records]
    # Each phase the status went through (a pass may see the shards already done and go from Pending to Filtering).
    assert phases[0] in ("Pending", "WaitingForModelCache") and phases[-1] == "Succeeded" and len(phases) >= 3
    assert [e["data"]["phase"] for e in events] == phases  # each phase once, in order
    assert len({e["id"] for e in events}) == len(events)
    last = events[-1]
    assert last["type"] == "io.boltz-operator.campaign.succeeded"
    assert last["data"]["results"]["report"] == "s3://results/boltz/final/report.html"
    assert len(last["data"]["results"]["topDesigns"]) == 5  # of the 8 in status: events stay small


def test_a_finished_screen_is_announced_with_its_report(cluster, namespace, operator):
    from test_screen_lifecycle import TOP, played_screen, screen, shard_ok

    from boltz_contract import RunSummary

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(model_cache()))
    ranked = RunSummary(ok=True, ligands_total=9, ligands_done=8, ligands_failed=1, top_ligands=TOP,
                        report="report.html")  # fmt: skip
    with Receiver() as receiver:
        pods = played_screen(shard_ok(0, 3), shard_ok(1, 3), shard_ok(2, 2), rank=ranked)
        body = screen("egfr", pods, notify={"webhooks": [{"url": receiver.url}]})
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=as_input(body))
        [request] = receiver.wait_for(1, timeout=120)
        event = request.event
    assert event["type"] == "io.boltz-operator.screen.succeeded"
    results = event["data"]["results"]
    assert results["report"].endswith("/report.html") and results["table"].endswith("/ranked.csv")
    assert [t["id"] for t in results["topLigands"]] == ["osimertinib", "erlotinib"]
    wait_until(
        lambda: (cluster.kubectl_json("get", "boltzscreen", "egfr", "-n", namespace)["status"].get("notifications")
                 or [{}])[-1].get("delivered") == [0],
        timeout=30, what="the screen's event marked delivered",
    )  # fmt: skip

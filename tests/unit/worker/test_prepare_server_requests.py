"""The bounded, counted MSA-server client boltz's mmseqs2 module gets (prepare/server_requests.py), on a fake
clock and a fake session: how often it retries a refusal, how long it waits, what it counts."""

from __future__ import annotations

import json

import pytest
import requests

from boltz_worker.prepare.server_requests import BackoffPolicy, BoundedRequests, MsaServerRefused

URL = "http://msa.test"


def response(status: int = 200, body: dict | None = None, headers: dict | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = {200: "OK", 429: "Too Many Requests", 503: "Service Unavailable", 404: "Not Found"}.get(status, "")
    r._content = json.dumps(body if body is not None else {"id": "t1", "status": "COMPLETE"}).encode()
    r.headers.update(headers or {})
    return r


class FakeSession:
    def __init__(self, *answers: requests.Response):
        self.answers = list(answers)
        self.calls: list[tuple[str, str]] = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def client(session: FakeSession, attempts: int = 4, base: float = 10.0, rng: float = 0.0):
    slept: list[float] = []
    bounded = BoundedRequests(BackoffPolicy(attempts=attempts, base_seconds=base, cap_seconds=60.0, jitter=0.5),
                              sleep=slept.append, rng=lambda: rng, session=session)  # fmt: skip
    return bounded, slept


def test_waits_double_from_the_base_up_to_the_cap_then_give_up():
    policy = BackoffPolicy(attempts=6, base_seconds=10.0, cap_seconds=60.0, jitter=0.5)
    assert [policy.wait(n, None, rng=lambda: 0.0) for n in range(1, 7)] == [10.0, 20.0, 40.0, 60.0, 60.0, None]


def test_jitter_stretches_each_wait_by_up_to_its_fraction():
    policy = BackoffPolicy(attempts=3, base_seconds=10.0, jitter=0.5)
    assert policy.wait(1, None, rng=lambda: 1.0) == 15.0
    assert policy.wait(2, None, rng=lambda: 0.5) == 25.0


def test_retry_after_longer_than_the_backoff_wins_and_one_past_the_cap_gives_up():
    policy = BackoffPolicy(attempts=5, base_seconds=1.0, cap_seconds=60.0, jitter=0.0)
    assert policy.wait(1, 30.0) == 30.0
    assert policy.wait(1, 0.5) == 1.0
    assert policy.wait(1, 61.0) is None


def test_a_429_is_retried_with_backoff_and_every_submission_counted():
    session = FakeSession(response(429), response(429), response())
    bounded, slept = client(session)
    assert bounded.post(f"{URL}/ticket/msa", data={}).json()["status"] == "COMPLETE"
    assert slept == [10.0, 20.0]
    assert (bounded.submissions, bounded.retries) == (3, 2)


def test_a_ratelimit_status_in_a_200_answer_is_a_refusal_too():
    session = FakeSession(response(200, {"status": "RATELIMIT"}), response())
    bounded, slept = client(session)
    bounded.post(f"{URL}/ticket/pair", data={})
    assert slept == [10.0] and bounded.submissions == 2


def test_retry_after_is_honoured():
    session = FakeSession(response(429, {}, {"Retry-After": "42"}), response())
    bounded, slept = client(session, base=1.0)
    bounded.post(f"{URL}/ticket/msa")
    assert slept == [42.0]


def test_refusals_past_the_attempts_raise_past_boltz_s_except_exception():
    session = FakeSession(response(429))
    bounded, slept = client(session, attempts=3)
    with pytest.raises(MsaServerRefused) as raised:
        try:
            bounded.post(f"{URL}/ticket/msa")
        except Exception:  # noqa: BLE001 (what boltz's client does around each request)
            pytest.fail("boltz's `except Exception` would have swallowed the refusal and retried forever")
    assert raised.value.attempts == 3 and raised.value.refusal == "HTTP 429 Too Many Requests"
    assert len(slept) == 2 and bounded.submissions == 3
    with pytest.raises(MsaServerRefused):  # boltz calling again gets the same answer, no new request
        bounded.get(f"{URL}/ticket/t1")
    assert len(session.calls) == 3


def test_polls_and_downloads_are_not_submissions_and_unknown_is_only_refused_on_submit():
    session = FakeSession(response(200, {"status": "UNKNOWN"}))
    bounded, slept = client(session)
    assert bounded.get(f"{URL}/ticket/t1").json()["status"] == "UNKNOWN"
    assert bounded.submissions == 0 and slept == []


def test_a_5xx_is_retried_and_a_404_is_left_to_boltz():
    bounded, slept = client(FakeSession(response(503), response()))
    bounded.get(f"{URL}/result/download/t1")
    assert slept == [10.0]
    bounded, slept = client(FakeSession(response(404, {"error": "x"})))
    assert bounded.get(f"{URL}/result/download/t1").status_code == 404 and slept == []


class Unreachable(FakeSession):
    def request(self, method, url, **kwargs):
        self.calls.append((method, url))
        raise requests.ConnectionError("connection refused")


def test_a_server_that_cannot_be_reached_is_bounded_by_the_same_policy():
    session = Unreachable(response())
    bounded, slept = client(session, attempts=3)
    with pytest.raises(MsaServerRefused) as raised:
        bounded.post(f"{URL}/ticket/msa")
    assert raised.value.refusal == "cannot connect: ConnectionError" and not raised.value.rate_limited
    assert slept == [10.0, 20.0] and len(session.calls) == 3

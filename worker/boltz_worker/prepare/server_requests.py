"""A bounded, counted stand-in for the `requests` module that boltz's MSA client uses.

boltz 2.2.1's ColabFold client (boltz/data/msa/mmseqs2.py `run_mmseqs2`) calls `requests.post` / `requests.get`
on the module it imported, and
- resubmits FOREVER, 5-10 s apart, while a submission answers status RATELIMIT or UNKNOWN;
- turns any answer that is not JSON (an HTTP 429 or 5xx page) into status ERROR and raises a bare Exception
  ("MMseqs2 API is giving errors. Please confirm your input is a valid protein sequence...");
- catches every Exception around each request and retries it 5 times, 5 s apart.
`boltz_child` sets `boltz.data.msa.mmseqs2.requests` to a BoundedRequests. It counts the submissions (POSTs to
/ticket/msa and /ticket/pair, refused ones included: the server counts them too) and retries a refusal (HTTP 429,
HTTP 5xx, status RATELIMIT, or UNKNOWN on a submission; a connection error or timeout too) after an exponential,
jittered backoff that honours Retry-After, at most `attempts` times per request; then raises MsaServerRefused, a BaseException so that boltz's
`except Exception` retry loops let it through.

Why not urllib3.util.Retry (the only retry library in boltz's environment; no tenacity there): RATELIMIT comes in
the JSON body of an HTTP 200, which urllib3 never sees as a status; urllib3 retries inside the connection pool,
where the attempts cannot be counted and its sleeps cannot be clocked in a test; and its backoff waits 0 s before
the first retry, which is wrong against a rate limit. Its Retry-After parser (seconds or an HTTP date) is used.

Standard library, requests and urllib3 only: this runs in the process that imports boltz.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

SUBMISSION_PATHS = ("/ticket/msa", "/ticket/pair")
REFUSED_STATUSES = frozenset({"RATELIMIT"})  # in any answer's JSON
REFUSED_SUBMISSION_STATUSES = frozenset({"RATELIMIT", "UNKNOWN"})  # boltz resubmits forever on these
RETRIED_HTTP = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class BackoffPolicy:
    """How often and how long to wait after a refusal.

    attempts: requests sent at most for one call (the first included), >= 1. base_seconds: the wait after the
    first refusal; it doubles after each further one, up to cap_seconds. jitter: each wait is multiplied by a
    factor drawn uniformly from [1, 1 + jitter] (prepares that were refused together do not return together).
    A Retry-After (seconds) longer than the computed wait replaces it; one longer than cap_seconds ends the call."""

    attempts: int
    base_seconds: float
    cap_seconds: float = 300.0
    jitter: float = 0.5

    def wait(self, refusals: int, retry_after: float | None, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait after the `refusals`-th refusal of one call (1-based), or None to give up."""
        if refusals >= self.attempts:
            return None
        if retry_after is not None and retry_after > self.cap_seconds:
            return None
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** (refusals - 1)) * (1 + self.jitter * rng())
        return max(backoff, retry_after or 0.0)


class MsaServerRefused(BaseException):  # noqa: N818 (BaseException on purpose: see the module's docstring)
    """The server kept refusing (or could not be reached) past the policy's attempts, or asked to wait longer
    than its cap. `rate_limited`: the refusals were rate limits (HTTP 429, status RATELIMIT)."""

    def __init__(self, url: str, refusal: str, attempts: int, retry_after: float | None):
        self.url, self.refusal, self.attempts, self.retry_after = url, refusal, attempts, retry_after
        self.rate_limited = "429" in refusal or "RATELIMIT" in refusal
        wait = f"; it asked to wait {retry_after:.0f} s" if retry_after is not None else ""
        super().__init__(f"{url} refused {attempts} time{'s' if attempts > 1 else ''} ({refusal}{wait})")


class BoundedRequests:
    """post/get as boltz's client calls them (`requests.post(url, data=, timeout=, headers=, auth=)`), bounded by
    `policy`. `submissions` counts submission POSTs, `retries` the waits taken. `sleep` and `rng` are injectable
    so a test can run the policy on a fake clock."""

    def __init__(self, policy: BackoffPolicy, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, session: requests.Session | None = None):  # fmt: skip
        self.policy = policy
        self.sleep = sleep
        self.rng = rng
        self.session = session or requests.Session()
        self.submissions = 0
        self.retries = 0
        self.refused: MsaServerRefused | None = None

    def post(self, url: str, **kwargs) -> requests.Response:
        return self._call("POST", url, kwargs)

    def get(self, url: str, **kwargs) -> requests.Response:
        return self._call("GET", url, kwargs)

    def _call(self, method: str, url: str, kwargs: dict) -> requests.Response:
        if self.refused is not None:  # boltz may call again after we gave up: keep giving up
            raise self.refused
        submission = method == "POST" and url.rstrip("/").endswith(SUBMISSION_PATHS)
        refusals = 0
        while True:
            if submission:
                self.submissions += 1
            retry_after = None
            try:
                response = self.session.request(method, url, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as e:  # boltz would retry 5 x 5 s, then raise
                refusal = f"cannot connect: {type(e).__name__}"
            else:
                found = refusal_of(response, submission)
                if found is None:
                    return response
                refusal, retry_after = found, retry_after_seconds(response)
            refusals += 1
            wait = self.policy.wait(refusals, retry_after, self.rng)
            if wait is None:
                self.refused = MsaServerRefused(url, refusal, refusals, retry_after)
                raise self.refused
            self.retries += 1
            log.warning("MSA server %s %s: %s; retry %d of %d in %.1f s", method, url, refusal, refusals,
                        self.policy.attempts - 1, wait)  # fmt: skip
            self.sleep(wait)


def refusal_of(response: requests.Response, submission: bool) -> str | None:
    """Why `response` is a refusal to retry ("HTTP 429 Too Many Requests", "status RATELIMIT"), or None."""
    if response.status_code in RETRIED_HTTP:
        return f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    if response.status_code != 200:
        return None  # boltz's own handling (an ERROR, raised with its message)
    try:
        status = response.json().get("status")
    except (ValueError, AttributeError):
        return None
    refused = REFUSED_SUBMISSION_STATUSES if submission else REFUSED_STATUSES
    return f"status {status}" if status in refused else None


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), or None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except (InvalidHeader, ValueError):
        return None

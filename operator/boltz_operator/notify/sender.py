"""One webhook delivery: POST the event until a 2xx, with exponential backoff and jitter between attempts.

No retry library is pinned in this project (constraints.txt), and the loop is a few lines: attempt, classify, sleep
`min(max, base x 2^(n-1))` times a jitter in [0.8, 1.2). A 2xx is success. 5xx, 408, 429, timeouts and connection
errors are retried; any other answer (400, 401 for a bad signature, 404, a 3xx: redirects are not followed) is
final, since sending the same request again would get the same answer.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from boltz_operator.notify.policy import RefusedAddress

RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and the pauses between them (seconds)."""

    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 300.0
    timeout_seconds: float = 10.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        jitter = 0.8 + 0.4 * (rng or random).random()
        return min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1)) * jitter


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status: int | None  # the HTTP status, None when no answer came
    error: str | None  # what went wrong, for Events and logs
    retryable: bool


async def post_once(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
                    timeout: float) -> AttemptResult:  # fmt: skip
    """One POST; never raises for network or HTTP failures (they are results)."""
    try:
        async with session.post(
            url, data=body, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            await response.read()
            if 200 <= response.status < 300:
                return AttemptResult(True, response.status, None, False)
            retryable = response.status >= 500 or response.status in RETRYABLE_STATUSES
            return AttemptResult(False, response.status, f"HTTP {response.status} {response.reason or ''}".strip(),
                                 retryable)  # fmt: skip
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        refused = isinstance(err, RefusedAddress) or isinstance(getattr(err, "os_error", None), RefusedAddress)
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return AttemptResult(False, None, text, retryable=not refused)  # a refused address stays refused


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Callable[[], Awaitable[dict[str, str]]],
    retry: RetryPolicy,
    on_failed_attempt: Callable[[int, AttemptResult], Awaitable[None]],
) -> AttemptResult:
    """POST `body` to `url` until it is acknowledged, a final answer comes, or the attempts are spent.

    headers: called before each attempt (the signature's timestamp is fresh each time; the body and event id are
    not). on_failed_attempt(attempt, result): told of each failure before the pause. Returns the last result.
    """
    result = AttemptResult(False, None, "no attempt made", False)
    for attempt in range(1, retry.max_attempts + 1):
        result = await post_once(session, url, body, await headers(), retry.timeout_seconds)
        if result.ok:
            return result
        await on_failed_attempt(attempt, result)
        if not result.retryable:
            return result
        if attempt < retry.max_attempts:
            await asyncio.sleep(retry.delay(attempt))
    return result

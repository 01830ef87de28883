"""The signature of a webhook request: HMAC-SHA256 with the key from the run's Secret.

Header `X-Boltz-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>` (the scheme Stripe's webhooks
use): the timestamp inside the signed text lets a receiver refuse replays older than it tolerates.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Boltz-Signature"


def signature(key: bytes, body: bytes, timestamp: int) -> str:
    """The header value for `body` signed at `timestamp` (unix seconds)."""
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(key: bytes, body: bytes, header: str, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the header's HMAC matches and its timestamp is within `tolerance` seconds of `now`."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(key, body, timestamp), header)
